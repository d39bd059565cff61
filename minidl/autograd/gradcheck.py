"""Check an analytic gradient against central finite differences, in float64.

The output is multiplied by a fixed random array before it is summed (a plain sum
hides errors that cancel, e.g. in softmax); every element of every input that
requires grad is perturbed by +-eps.
"""
import numpy as np

from minidl import backend
from minidl.autograd.mode import no_grad


class GradcheckError(AssertionError):
    """An analytic gradient that disagrees with the finite-difference one."""


def _projected(fn, inputs, weight):
    out = fn(*inputs)
    return float((backend.to_numpy(out.data).astype(np.float64) * weight).sum())


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """True when d(sum(w * fn(*inputs)))/d(input) matches central differences for every
    input that requires grad; otherwise raise GradcheckError naming the input, the
    element's index and both values.

    inputs: Tensors (float64 where they require grad); fn: Tensors -> one Tensor.

    >>> import numpy as np, minidl
    >>> x = minidl.tensor(np.array([[0.5, -1.0, 2.0]]), requires_grad=True)
    >>> minidl.gradcheck(lambda x: minidl.functional.softmax(x * x), [x])
    True
    """
    inputs = list(inputs)
    checked = [i for i, t in enumerate(inputs) if getattr(t, "requires_grad", False)]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; finite differences need float64")

    out = fn(*inputs)
    weight = np.random.default_rng(seed).standard_normal(out.shape)
    saved_grads = [inputs[i].grad for i in checked]
    for i in checked:
        inputs[i].grad = None
    xp = backend.get_array_module(out.data)
    (out * xp.asarray(weight, dtype=out.dtype)).sum().backward()
    analytic = {i: backend.to_numpy(inputs[i].grad) if inputs[i].grad is not None else np.zeros(inputs[i].shape) for i in checked}
    for i, grad in zip(checked, saved_grads):
        inputs[i].grad = grad

    with no_grad():
        for i in checked:
            data = inputs[i].data
            host = backend.to_numpy(data).copy()
            for index in np.ndindex(*host.shape):
                original = host[index]
                host[index] = original + eps
                inputs[i].data = backend.to_device(host.copy(), backend.device_of(data))
                plus = _projected(fn, inputs, weight)
                host[index] = original - eps
                inputs[i].data = backend.to_device(host.copy(), backend.device_of(data))
                minus = _projected(fn, inputs, weight)
                host[index] = original
                inputs[i].data = data
                numeric = (plus - minus) / (2 * eps)
                value = analytic[i][index]
                if not abs(numeric - value) <= atol + rtol * abs(numeric):
                    raise GradcheckError(
                        f"gradcheck: input {i} (shape {host.shape}) at index {index}: "
                        f"analytic {value:.8g}, numeric {numeric:.8g} (eps={eps}, atol={atol}, rtol={rtol})"
                    )
    return True
