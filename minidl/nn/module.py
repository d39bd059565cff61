"""Module: the base of every layer and model; Parameter: a trainable leaf tensor.

As in Keras, a layer creates its weights lazily in `build(input_shape)`, called on its
first call (or by a container that knows the input shape), so `Dense(64)` needs no input
size. As in PyTorch, attributes that are Parameters or Modules are registered in order,
which gives `named_parameters()`, `state_dict()` and `zero_grad()` for free.

A Module computes; training it is `minidl.train`'s work, and the Keras methods
(compile, fit, evaluate, predict, summary) belong to `minidl.train.Model`, as in Keras.
"""
import re
from collections import OrderedDict

import numpy as np

from minidl import backend
from minidl.autograd import Tensor, no_grad
from minidl.nn import budget, init
from minidl.ops.loss import l2_penalty

#: Every Module subclass by class name, filled as classes are defined, so a model's
#: JSON config can be rebuilt without pickle.
LAYERS = {}


class Parameter(Tensor):
    """A leaf tensor that requires grad, with the L2 factor of its regulariser."""

    def __init__(self, data, regularizer=None, trainable=True):
        super().__init__(data, requires_grad=trainable)
        self.regularizer = regularizer

    def __repr__(self):
        return "Parameter(" + super().__repr__() + ")"


def _snake_case(name):
    """A layer's default name as Keras makes it: Conv1D -> conv1d, GlobalMaxPooling1D ->
    global_max_pooling1d, SimpleRNN -> simple_rnn: a word starts at a capital followed by
    lower case, or at a capital after a lower-case letter (never after a digit)."""
    words = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", words).lower()


class ParameterList(list):
    """The list `Module.parameters()` returns: a plain list that also knows the module
    it came from, so an optimiser made from it can tell when the module has since built
    weights it was not given (a lazily built layer, see `Optimizer.step`)."""

    def __init__(self, parameters, module):
        super().__init__(parameters)
        self.module = module


class Module:
    _name_counts = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        LAYERS[cls.__name__] = cls

    def __init__(self, name=None):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        self.training = True
        self.built = False
        self.name = name or self._auto_name()

    def _auto_name(self):
        base = _snake_case(type(self).__name__)
        count = Module._name_counts.get(base, 0)
        Module._name_counts[base] = count + 1
        return base if count == 0 else f"{base}_{count}"

    # ------------------------------------------------------------ registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before setting attributes")
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def add_weight(self, name, shape, initializer="glorot_uniform", regularizer=None, trainable=True):
        """Create, register and return the Parameter `name` of `shape`, on the current
        device, in the default dtype. `regularizer` is an L2 factor (Keras' l2(x))."""
        values = init.get(initializer)(budget.charged(self, name, shape))
        xp = backend.array_module_for()
        data = xp.asarray(np.asarray(values, dtype=backend.default_dtype()))
        parameter = Parameter(data, regularizer=regularizer, trainable=trainable)
        setattr(self, name, parameter)
        return parameter

    def add_buffer(self, name, values):
        """Register a non-trainable array that is saved with the weights (running
        statistics of batch normalisation)."""
        xp = backend.array_module_for()
        data = xp.asarray(np.asarray(values, dtype=backend.default_dtype()))
        self._buffers[name] = data
        object.__setattr__(self, name, data)
        return data

    def set_buffer(self, name, data):
        if name not in self._buffers:
            raise KeyError(f"{self.name}: no buffer named {name!r}")
        self._buffers[name] = data
        object.__setattr__(self, name, data)

    # ----------------------------------------------------------------- calling
    def build(self, input_shape):
        """Create the weights for inputs of `input_shape` (batch first, may be None)."""
        self.built = True

    def forward(self, *inputs, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} defines no forward()")

    def __call__(self, *inputs, **kwargs):
        if not self.built:
            first = inputs[0]
            self.build(first.shape if hasattr(first, "shape") else np.shape(first))
            self.built = True
            if len(inputs) == 1 and hasattr(first, "dtype") and getattr(self, "input_dtype", None) is None:
                self.input_dtype = np.dtype(first.dtype).name  # for summary() and io.save: ids stay ids
        return self.forward(*inputs, **kwargs)

    def compute_output_shape(self, input_shape):
        """Output shape (batch as None) for `input_shape`; by default found by running
        the layer in inference mode on one zero sample. Layers override with a formula."""
        if not self.built:
            self.build(input_shape)
            self.built = True
        xp = backend.array_module_for()
        dummy = xp.zeros((1,) + tuple(input_shape[1:]), dtype=backend.default_dtype())
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                out = self.forward(Tensor(dummy))
        finally:
            self.train(was_training)
        return (None,) + tuple(out.shape[1:])

    # ----------------------------------------------------------- traversal
    def children(self):
        return list(self._modules.values())

    def named_modules(self, prefix=""):
        """(dotted name, module) for this module and every descendant, depth first."""
        result, stack = [], [(prefix, self)]
        while stack:
            name, module = stack.pop()
            result.append((name, module))
            for child_name, child in reversed(module._modules.items()):
                stack.append((f"{name}.{child_name}" if name else child_name, child))
        return result

    def modules(self):
        return [m for _, m in self.named_modules()]

    def named_parameters(self):
        """(dotted name, Parameter) in registration order, each parameter once."""
        seen, result = set(), []
        for prefix, module in self.named_modules():
            for name, parameter in module._parameters.items():
                if id(parameter) not in seen:
                    seen.add(id(parameter))
                    result.append((f"{prefix}.{name}" if prefix else name, parameter))
        return result

    def parameters(self):
        return ParameterList([p for _, p in self.named_parameters()], self)

    def trainable_parameters(self):
        return ParameterList([p for p in self.parameters() if p.requires_grad], self)

    def named_buffers(self):
        return [
            (f"{prefix}.{name}" if prefix else name, data)
            for prefix, module in self.named_modules()
            for name, data in module._buffers.items()
        ]

    def count_params(self):
        return int(sum(p.size for p in self.parameters()))

    # ------------------------------------------------------------------ modes
    def train(self, mode=True):
        mode = bool(mode)
        for module in self.modules():
            # A plain flag, never a parameter or submodule: past __setattr__'s registries
            # (the inference loop calls eval() per batch).
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for parameter in self.parameters():
            parameter.grad = None

    def regularization_loss(self):
        """Sum of l2 * sum(w ** 2) over the parameters with an L2 regulariser (Keras'
        `kernel_regularizer=l2(l2)`), or None when there is none."""
        terms = [l2_penalty(p, p.regularizer) for p in self.parameters() if p.regularizer]
        if not terms:
            return None
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total

    def regularized(self, loss):
        """`loss` plus `regularization_loss()`: the objective a training step minimises
        (Keras adds its layers' regularisation losses the same way)."""
        penalty = self.regularization_loss()
        return loss if penalty is None else loss + penalty

    # ----------------------------------------------------------------- state
    def state_dict(self):
        """Name -> NumPy array copy, parameters then buffers (running statistics)."""
        state = OrderedDict((name, backend.to_numpy(p.data).copy()) for name, p in self.named_parameters())
        state.update((name, backend.to_numpy(data).copy()) for name, data in self.named_buffers())
        return state

    def load_state_dict(self, state):
        """Copy arrays into the parameters and buffers; names and shapes must match."""
        own = OrderedDict(self.named_parameters())
        buffers = OrderedDict(self.named_buffers())
        expected = list(own) + list(buffers)
        missing = [name for name in expected if name not in state]
        unexpected = [name for name in state if name not in own and name not in buffers]
        if missing or unexpected:
            raise ValueError(f"load_state_dict: missing {missing or 'none'}, unexpected {unexpected or 'none'}")
        for name in expected:
            value = np.asarray(backend.to_numpy(state[name]))
            current = own[name].data if name in own else buffers[name]
            if tuple(value.shape) != tuple(current.shape):
                raise ValueError(f"load_state_dict: {name} has shape {value.shape}, the model expects {tuple(current.shape)}")
            xp = backend.get_array_module(current)
            data = xp.asarray(value.astype(current.dtype))
            if name in own:
                own[name].data = data
            else:
                module_path, _, buffer_name = name.rpartition(".")
                module = dict(self.named_modules())[module_path]
                module.set_buffer(buffer_name, data)
        return self

    def to(self, device):
        """Move every parameter and buffer to `device` ('cpu' or 'cuda'), in place."""
        for parameter in self.parameters():
            parameter.data = backend.to_device(parameter.data, device)
            parameter.grad = None if parameter.grad is None else backend.to_device(parameter.grad, device)
        for module in self.modules():
            for name, data in list(module._buffers.items()):
                module.set_buffer(name, backend.to_device(data, device))
        return self

    # ----------------------------------------------------------------- config
    def get_config(self):
        """The constructor arguments as JSON-able data (Keras' get_config)."""
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        lines = [f"{type(self).__name__}(name={self.name!r})"]
        for name, child in self._modules.items():
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
        return "\n".join(lines)


def layer_from_config(spec):
    """Rebuild a layer from {"class_name": ..., "config": {...}} (see `serialize`)."""
    name = spec.get("class_name")
    if name not in LAYERS:
        raise ValueError(f"unknown layer class {name!r} in the model's config")
    return LAYERS[name].from_config(dict(spec.get("config", {})))


def serialize(layer):
    return {"class_name": type(layer).__name__, "config": layer.get_config()}
