"""The op contract: a Function has a forward and a backward on raw arrays.

    class Mul(Function):
        @staticmethod
        def forward(ctx, a, b):          # raw arrays in, one raw array out
            ctx.save(a, b)               # what backward needs, saved explicitly
            return a * b

        @staticmethod
        def backward(ctx, grad):         # d(loss)/d(output) in, one entry per input out
            a, b = ctx.saved
            return grad * b, grad * a    # None for an input with no gradient

`Function.apply(*inputs, **params)` wraps the inputs into Tensors, runs forward, and,
when any input requires grad and grad mode is on, records the node in the graph.
During the backward pass `run_backward` undoes broadcasting once for every op and
checks each gradient's shape, naming the op when it is wrong.
"""
import sys

import numpy as np

from minidl.autograd import mode
from minidl.autograd.tensor import Tensor, as_tensor


class Context:
    """What a forward leaves for its backward: saved arrays and plain attributes."""

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self.saved = ()

    def save(self, *arrays):
        self.saved = arrays


class Function:
    """Base class of every differentiable op; subclasses define forward and backward."""

    @staticmethod
    def forward(ctx, *arrays, **params):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params):
        # The common case, every input already a Tensor, skips the conversions: an op's
        # bookkeeping is what a batch-1 forward pass pays for (about 30 ops in conv_fully).
        if all(type(x) is Tensor for x in inputs):
            tensors = list(inputs)
        else:
            first = _first_tensor(inputs)
            tensors = [as_tensor(x, like=first) for x in inputs]
        if "cupy" in sys.modules:  # without CuPy every array is on the CPU
            _check_same_device(cls.__name__, tensors)
        needs = tuple(t.requires_grad for t in tensors)
        record = any(needs) and mode.is_grad_enabled()
        # Under no_grad no input needs a gradient: forwards that check skip saving.
        ctx = Context(needs if record else (False,) * len(needs))
        data = cls.forward(ctx, *[t.data for t in tensors], **params)
        if isinstance(data, np.generic):  # NumPy reductions return scalars, not arrays
            data = np.asarray(data)
        out = Tensor(data, requires_grad=record)
        if record:
            out._node = Node(cls, ctx, tensors)
        return out


class Node:
    """The record of one op application: the function, its context and its inputs."""

    __slots__ = ("function", "ctx", "inputs")

    def __init__(self, function, ctx, inputs):
        self.function = function
        self.ctx = ctx
        self.inputs = inputs

    @property
    def name(self):
        return self.function.__name__


def _first_tensor(inputs):
    for x in inputs:
        if isinstance(x, Tensor):
            return x
    return None


def _check_same_device(op_name, tensors):
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        raise ValueError(
            f"{op_name}: inputs are on different devices ({', '.join(sorted(devices))}); "
            "move them with .to(device) first"
        )
