"""Activation functions. relu and elu run through kernels (fused forward/backward);
sigmoid, softmax and log_softmax are dedicated ops for numerical stability."""
import numpy as np

from minidl.autograd import Function, as_tensor
from minidl.backend import get_array_module
from minidl.kernels import get_kernel
from minidl.ops import math


class ReLU(Function):
    """d relu(x)/dx = 1 where x > 0, else 0."""

    @staticmethod
    def forward(ctx, x):
        ctx.save(x)
        return get_kernel("activation", "relu_forward", x)(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        return (get_kernel("activation", "relu_backward", grad)(grad, x),)


class ELU(Function):
    """elu(x) = x (x > 0), alpha (e^x - 1) (x <= 0); derivative 1, or elu(x) + alpha."""

    @staticmethod
    def forward(ctx, x, alpha):
        out = get_kernel("activation", "elu_forward", x)(x, alpha)
        # With alpha > 0, x > 0 exactly where elu(x) > 0, so the output can stand in for
        # the input in backward and the input need not be kept (a conv_fully step at
        # batch 256 saves ~79 MB).
        ctx.save(out if alpha > 0 else x, out)
        ctx.alpha = alpha
        return out

    @staticmethod
    def backward(ctx, grad):
        sign_source, out = ctx.saved
        return (get_kernel("activation", "elu_backward", grad)(grad, sign_source, out, ctx.alpha),)


class Sigmoid(Function):
    """s(x) = 1 / (1 + e^-x), evaluated as e^x / (1 + e^x) for x < 0 so neither branch
    overflows; ds/dx = s (1 - s)."""

    @staticmethod
    def forward(ctx, x):
        xp = get_array_module(x)
        e = np.exp(-np.abs(x))
        out = xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        ctx.save(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return (grad * out * (1 - out),)


class Tanh(Function):
    """d tanh(x)/dx = 1 - tanh(x)^2."""

    @staticmethod
    def forward(ctx, x):
        out = np.tanh(x)
        ctx.save(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return (grad * (1 - out * out),)


class Softmax(Function):
    """y = e^(x - max x) / sum e^(x - max x) along `axis`; dx = y (g - sum(g y))."""

    @staticmethod
    def forward(ctx, x, axis):
        shifted = np.exp(x - x.max(axis=axis, keepdims=True))
        out = shifted / shifted.sum(axis=axis, keepdims=True)
        ctx.save(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return (out * (grad - (grad * out).sum(axis=ctx.axis, keepdims=True)),)


class LogSoftmax(Function):
    """y = x - logsumexp(x) along `axis`; dx = g - softmax(x) sum(g)."""

    @staticmethod
    def forward(ctx, x, axis):
        shifted = x - x.max(axis=axis, keepdims=True)
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return (grad - np.exp(out) * grad.sum(axis=ctx.axis, keepdims=True),)


def relu(x):
    return ReLU.apply(x)


def elu(x, alpha=1.0):
    return ELU.apply(x, alpha=float(alpha))


def sigmoid(x):
    return Sigmoid.apply(x)


def tanh(x):
    return Tanh.apply(x)


def softmax(x, axis=-1):
    """e^x / sum(e^x) along `axis` (shifted by the max first, so it never overflows).

    >>> import minidl
    >>> p = softmax(minidl.tensor([[0.0, 0.0], [1000.0, 1000.0 + 1.0986123]]))
    >>> [round(value, 4) for value in p.numpy().ravel().tolist()]
    [0.5, 0.5, 0.25, 0.75]
    """
    return Softmax.apply(x, axis=axis)


def log_softmax(x, axis=-1):
    return LogSoftmax.apply(x, axis=axis)


def hard_sigmoid(x):
    """Keras 2's hard_sigmoid, clip(0.2 x + 0.5, 0, 1), a cheap piecewise-linear sigmoid
    (Keras 2's default LSTM/GRU gate activation before 2.3.0). Composed from maximum, so
    it needs no backward of its own: the derivative is 0.2 on -2.5 < x < 2.5, else 0.
    Keras 3 changed hard_sigmoid's slope to 1/6; minidl does not offer that form.

    >>> import minidl
    >>> [round(v, 6) for v in hard_sigmoid(minidl.tensor([-3.0, -1.0, 0.0, 2.0, 3.0])).numpy().tolist()]
    [0.0, 0.3, 0.5, 0.9, 1.0]
    """
    x = as_tensor(x)
    return -math.maximum(-math.maximum(x * 0.2 + 0.5, 0.0), -1.0)


def leaky_relu(x, negative_slope=0.2):
    """max(x, slope * x), composed (Keras' default slope 0.2 is kept)."""
    x = as_tensor(x)
    return math.maximum(x, x * negative_slope)
