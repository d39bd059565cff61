"""CUDA twins of kernels/reference/activation.py: relu and elu, forward and backward,
one thread per element, each element read and written once (no boolean temporaries,
no `where` over two evaluated branches).

The arrays are flattened first (a contiguous copy only where an input is not
contiguous); outputs are allocated with the inputs' array module, so these functions
serve CuPy arrays on a GPU and NumPy arrays under the CUDA simulator.
"""
import math

from numba import cuda

from minidl.backend import get_array_module
from minidl.kernels.numba_cuda.launch import flat, launch


@cuda.jit
def _relu_forward(x, out):
    i = cuda.grid(1)
    if i < x.size:
        v = x[i]
        # `v <= 0` is False for NaN, so NaN passes through as in np.maximum(x, 0).
        if v <= 0:
            out[i] = 0
        else:
            out[i] = v


@cuda.jit
def _relu_backward(grad, x, out):
    i = cuda.grid(1)
    if i < x.size:
        # A product rather than a branch, so a NaN gradient stays NaN as in the reference.
        out[i] = grad[i] * (1 if x[i] > 0 else 0)


@cuda.jit
def _elu_forward(x, alpha, out):
    i = cuda.grid(1)
    if i < x.size:
        v = x[i]
        # Only the branch taken is evaluated, so e^x never overflows for large x.
        if v > 0:
            out[i] = v
        else:
            out[i] = alpha * math.expm1(v)


@cuda.jit
def _elu_backward(grad, x, out, alpha, grad_in):
    i = cuda.grid(1)
    if i < x.size:
        if x[i] > 0:
            grad_in[i] = grad[i]
        else:
            grad_in[i] = grad[i] * (out[i] + alpha)


def relu_forward(x):
    out = get_array_module(x).empty(x.shape, dtype=x.dtype)
    launch(_relu_forward, x.size, flat(x), out.reshape(-1))
    return out


def relu_backward(grad, x):
    """d relu(x)/dx = 1 where x > 0."""
    out = get_array_module(grad).empty(grad.shape, dtype=grad.dtype)
    launch(_relu_backward, grad.size, flat(grad), flat(x), out.reshape(-1))
    return out


def elu_forward(x, alpha):
    """x where x > 0, alpha * (exp(x) - 1) elsewhere."""
    out = get_array_module(x).empty(x.shape, dtype=x.dtype)
    launch(_elu_forward, x.size, flat(x), x.dtype.type(alpha), out.reshape(-1))
    return out


def elu_backward(grad, x, out, alpha):
    """d elu(x)/dx = 1 where x > 0, elu(x) + alpha elsewhere."""
    grad_in = get_array_module(grad).empty(grad.shape, dtype=grad.dtype)
    launch(_elu_backward, grad.size, flat(grad), flat(x), flat(out), out.dtype.type(alpha), grad_in.reshape(-1))
    return grad_in
