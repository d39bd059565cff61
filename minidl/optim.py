"""Optimisers with Keras' semantics: Adam and SGD (momentum, Nesterov).

Each updates the parameters in place from their `.grad`, under no_grad, and skips
parameters without a gradient. `state_dict()` holds the step count and moments so a
checkpoint can resume training exactly. Made from `model.parameters()`, an optimiser
checks at its first step that the model has built no weights since (layers that build
on their first call), so none is left out of training silently.
"""
import numpy as np

from minidl import backend
from minidl.autograd import no_grad


class Optimizer:
    def __init__(self, params, lr):
        self._module = getattr(params, "module", None)  # set by Module.parameters()
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError(f"{type(self).__name__}: no trainable parameters given (build the model first)")
        if lr <= 0:
            raise ValueError(f"{type(self).__name__}: lr must be positive, got {lr}")
        self.lr = float(lr)
        self.iterations = 0

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        if self.iterations == 0:
            self._check_nothing_left_out()
        with no_grad():
            self.iterations += 1
            for i, p in enumerate(self.params):
                if p.grad is not None:
                    self._update(i, p)

    def _update(self, index, param):
        raise NotImplementedError

    def _check_nothing_left_out(self):
        """Raise when the module the parameters came from now has trainable parameters
        this optimiser was not given: layers that built their weights on the model's
        first call, after the optimiser was made."""
        if self._module is None:
            return
        held = {id(p) for p in self.params}
        left_out = [name for name, p in self._module.named_parameters() if p.requires_grad and id(p) not in held]
        if left_out:
            raise ValueError(f"{type(self).__name__}: the model has {len(left_out)} trainable parameters built after "
                             f"this optimiser was made ({', '.join(left_out[:3])}{', ...' if len(left_out) > 3 else ''})"
                             ", which it would never update; make the optimiser after the model's first call, or "
                             "build the model first: model.build(input_shape)")

    def _slots(self, name):
        slots = getattr(self, name, None)
        if slots is None:
            slots = [None] * len(self.params)
            setattr(self, name, slots)
        return slots

    def state_dict(self):
        state = {"iterations": np.asarray(self.iterations)}
        for name in self.slot_names:
            for i, value in enumerate(self._slots(name)):
                if value is not None:
                    state[f"{name}.{i}"] = backend.to_numpy(value).copy()
        return state

    def load_state_dict(self, state):
        self.iterations = int(state["iterations"])
        for name in self.slot_names:
            slots = self._slots(name)
            for i, p in enumerate(self.params):
                key = f"{name}.{i}"
                if key in state:
                    slots[i] = backend.get_array_module(p.data).asarray(state[key], dtype=p.dtype)


class SGD(Optimizer):
    """v = momentum * v - lr * g; w += v (Nesterov: w += momentum * v - lr * g), as Keras."""

    slot_names = ("velocity",)

    def __init__(self, params, lr=0.01, momentum=0.0, nesterov=False):
        super().__init__(params, lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def _update(self, index, param):
        grad = param.grad
        if self.momentum == 0:
            param.data -= self.lr * grad
            return
        velocity = self._slots("velocity")
        if velocity[index] is None:
            velocity[index] = backend.get_array_module(grad).zeros_like(param.data)
        v = velocity[index]
        v *= self.momentum
        v -= self.lr * grad
        if self.nesterov:
            param.data += self.momentum * v - self.lr * grad
        else:
            param.data += v


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) in Keras' form:
    lr_t = lr / (1 + decay * t0) * sqrt(1 - beta_2^t) / (1 - beta_1^t),
    m = beta_1 m + (1 - beta_1) g, v = beta_2 v + (1 - beta_2) g^2,
    w -= lr_t * m / (sqrt(v) + epsilon); t0 counts the steps taken before this one."""

    slot_names = ("m", "v")

    def __init__(self, params, lr=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8, decay=0.0):
        super().__init__(params, lr)
        for name, beta in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0 <= beta < 1:
                raise ValueError(f"Adam: {name} must be in [0, 1), got {beta}")
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)
        self.epsilon, self.decay = float(epsilon), float(decay)
        self._step_lr = None

    def step(self):
        t = self.iterations + 1
        lr = self.lr / (1.0 + self.decay * self.iterations)
        self._step_lr = lr * np.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)
        super().step()

    def _update(self, index, param):
        grad = param.grad
        ms, vs = self._slots("m"), self._slots("v")
        if ms[index] is None:
            xp = backend.get_array_module(grad)
            ms[index], vs[index] = xp.zeros_like(param.data), xp.zeros_like(param.data)
        m, v = ms[index], vs[index]
        m *= self.beta_1
        m += (1 - self.beta_1) * grad
        v *= self.beta_2
        v += (1 - self.beta_2) * grad * grad
        param.data -= (self._step_lr * m / (np.sqrt(v) + self.epsilon)).astype(param.dtype, copy=False)
