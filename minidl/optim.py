"""Optimisers with Keras' semantics: Adam and SGD (momentum, Nesterov).

Each updates the parameters in place from their `.grad`, under no_grad, and skips
parameters without a gradient. `state_dict()` holds the step count and moments so a
checkpoint can resume training exactly. Made from `model.parameters()`, an optimiser
checks at its first step that the model has built no weights since (layers that build
on their first call), so none is left out of training silently.

The update itself is a kernel (kernels/*/optim.py: one fused pass over the parameter,
its gradient and its slots). A gradient that holds only some rows of a matrix
(`minidl.sparse.IndexedSlices`, from an embedding bag) updates only those rows and their
slots, so a step over a 2^18-row n-gram table costs the rows the batch used. For SGD
without momentum that is exactly the dense step (the other rows' gradient is zero). For
momentum and Adam it is the lazy form (TensorFlow's LazyAdam, PyTorch's SparseAdam): the
moments of a row that a step does not touch are not decayed that step, and the row does
not move; with the dense form they would decay and keep moving it.
"""
import numpy as np

from minidl import backend
from minidl.autograd import no_grad
from minidl.kernels import get_kernel
from minidl.sparse import IndexedSlices


class Optimizer:
    """`params`: parameters, or PyTorch's parameter groups, dicts {"params": [...],
    "lr": ...} whose lr overrides the optimiser's for those parameters (a linear part
    over hashed n-grams learns at a higher rate than the convolutions beside it). A
    group's lr is kept as a multiple of `lr`, so a schedule that changes `lr`
    (ReduceLROnPlateau) changes every group's in proportion."""

    def __init__(self, params, lr):
        self._module = getattr(params, "module", None)  # set by Module.parameters()
        if lr <= 0:
            raise ValueError(f"{type(self).__name__}: lr must be positive, got {lr}")
        self.lr = float(lr)
        self.params, self.lr_scales = [], []
        for group in _groups(params):
            group_lr = float(group.get("lr", lr))
            if group_lr <= 0:
                raise ValueError(f"{type(self).__name__}: a parameter group's lr must be positive, got {group_lr}")
            trainable = [p for p in group["params"] if p.requires_grad]
            self.params += trainable
            self.lr_scales += [group_lr / self.lr] * len(trainable)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: no trainable parameters given (build the model first)")
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
                if p.grad is not None and not p.data.flags.c_contiguous:
                    # the kernels update element by element in place; an orthogonal
                    # initialiser's transpose, say, is copied once into C order
                    p.data = backend.get_array_module(p.data).ascontiguousarray(p.data)
                if isinstance(p.grad, IndexedSlices):
                    self._update_rows(i, p, p.grad)
                elif p.grad is not None:
                    self._update(i, p)

    def _update(self, index, param):
        """Update the whole of `param` from `param.grad`."""
        raise NotImplementedError

    def _update_rows(self, index, param, grad):
        """Update the rows `grad.indices` of `param` (and of its slots) only."""
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

    def slots(self, name):
        """The optimiser's slot `name` (one of `slot_names`: Adam's moments "m" and "v",
        SGD's "velocity"): a list with one array per parameter, None until the
        parameter's first update; an entry may be replaced by an array of its shape
        (data-parallel training fills in the slots of parameters other ranks update)."""
        slots = getattr(self, name, None)
        if slots is None:
            slots = [None] * len(self.params)
            setattr(self, name, slots)
        return slots

    def _slot(self, name, index, param):
        """The slot array `name` of parameter `index`, zeros like the parameter at first."""
        slots = self.slots(name)
        if slots[index] is None:
            slots[index] = backend.get_array_module(param.data).zeros_like(param.data)
        return slots[index]

    def state_dict(self):
        state = {"iterations": np.asarray(self.iterations)}
        for name in self.slot_names:
            for i, value in enumerate(self.slots(name)):
                if value is not None:
                    state[f"{name}.{i}"] = backend.to_numpy(value).copy()
        return state

    def load_state_dict(self, state):
        self.iterations = int(state["iterations"])
        for name in self.slot_names:
            slots = self.slots(name)
            for i, p in enumerate(self.params):
                key = f"{name}.{i}"
                if key in state:
                    slots[i] = backend.get_array_module(p.data).asarray(state[key], dtype=p.dtype)


def _groups(params):
    """Parameter groups (dicts with "params") from parameters or groups."""
    params = list(params)
    if all(isinstance(group, dict) for group in params):
        for group in params:
            if "params" not in group or set(group) - {"params", "lr"}:
                raise ValueError(f"optimizer: a parameter group holds 'params' and optionally 'lr', "
                                 f"got {sorted(group)}")
        return [dict(group, params=list(group["params"])) for group in params]
    if any(isinstance(group, dict) for group in params):
        raise ValueError("optimizer: give parameters or parameter groups (dicts), not a mix")
    return [{"params": params}]


class SGD(Optimizer):
    """v = momentum * v - lr * g; w += v (Nesterov: w += momentum * v - lr * g), as Keras."""

    slot_names = ("velocity",)

    def __init__(self, params, lr=0.01, momentum=0.0, nesterov=False):
        super().__init__(params, lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def _velocity(self, index, param):
        return None if self.momentum == 0 else self._slot("velocity", index, param)

    def _update(self, index, param):
        get_kernel("optim", "sgd_update", param.data)(param.data, param.grad, self._velocity(index, param),
                                                      self.lr * self.lr_scales[index], self.momentum, self.nesterov)

    def _update_rows(self, index, param, grad):
        get_kernel("optim", "sgd_update_rows", param.data)(param.data, grad.indices, grad.values,
                                                           self._velocity(index, param),
                                                           self.lr * self.lr_scales[index], self.momentum,
                                                           self.nesterov)


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
        get_kernel("optim", "adam_update", param.data)(param.data, param.grad, self._slot("m", index, param),
                                                       self._slot("v", index, param),
                                                       self._step_lr * self.lr_scales[index], self.beta_1,
                                                       self.beta_2, self.epsilon)

    def _update_rows(self, index, param, grad):
        get_kernel("optim", "adam_update_rows", param.data)(param.data, grad.indices, grad.values,
                                                            self._slot("m", index, param),
                                                            self._slot("v", index, param),
                                                            self._step_lr * self.lr_scales[index], self.beta_1,
                                                            self.beta_2, self.epsilon)
