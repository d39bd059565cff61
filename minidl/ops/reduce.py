"""Reductions over axes: sum, mean, max, and log-sum-exp."""
import numpy as np

from minidl.autograd import Function, as_tensor
from minidl.backend import get_array_module


def _normalize_axes(axis, ndim, op_name):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    normalized = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{op_name}: axis {a} is out of range for a tensor with {ndim} dimensions")
        normalized.append(a % ndim)
    return tuple(sorted(set(normalized)))


def _expand_reduced(grad, axes, keepdims):
    """Re-insert the reduced axes into `grad` so it broadcasts against the input."""
    if keepdims:
        return grad
    for a in axes:
        grad = get_array_module(grad).expand_dims(grad, a)
    return grad


class Sum(Function):
    """d(sum x)/dx = 1 broadcast over the reduced axes."""

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        return x.sum(axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        grad = _expand_reduced(grad, ctx.axes, ctx.keepdims)
        return (get_array_module(grad).broadcast_to(grad, ctx.shape),)


class Max(Function):
    """d(max x)/dx = 1 at the maxima, shared equally between ties, 0 elsewhere."""

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        out = x.max(axis=axes, keepdims=True)
        winners = x == out
        ctx.save(winners / winners.sum(axis=axes, keepdims=True))
        ctx.axes, ctx.keepdims = axes, keepdims
        return out if keepdims else out.squeeze(axis=axes)

    @staticmethod
    def backward(ctx, grad):
        (share,) = ctx.saved
        return (_expand_reduced(grad, ctx.axes, ctx.keepdims) * share,)


class LogSumExp(Function):
    """log(sum exp x), computed as m + log(sum exp(x - m)) with m = max x so it never
    overflows; d/dx = softmax(x) over the reduced axes."""

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        m = x.max(axis=axes, keepdims=True)
        shifted = np.exp(x - m)
        total = shifted.sum(axis=axes, keepdims=True)
        ctx.save(shifted / total)
        ctx.axes, ctx.keepdims = axes, keepdims
        out = m + np.log(total)
        return out if keepdims else out.squeeze(axis=axes)

    @staticmethod
    def backward(ctx, grad):
        (softmax,) = ctx.saved
        return (_expand_reduced(grad, ctx.axes, ctx.keepdims) * softmax,)


def sum(x, axis=None, keepdims=False):  # noqa: A001 - the name users expect
    x = as_tensor(x)
    return Sum.apply(x, axes=_normalize_axes(axis, x.ndim, "sum"), keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    """sum(x) / n, composed from Sum."""
    x = as_tensor(x)
    axes = _normalize_axes(axis, x.ndim, "mean")
    count = int(np.prod([x.shape[a] for a in axes])) if axes else 1
    return Sum.apply(x, axes=axes, keepdims=keepdims) * (1.0 / count)


def max(x, axis=None, keepdims=False):  # noqa: A001 - the name users expect
    x = as_tensor(x)
    if x.size == 0:
        raise ValueError("max: the tensor is empty")
    return Max.apply(x, axes=_normalize_axes(axis, x.ndim, "max"), keepdims=keepdims)


def logsumexp(x, axis=-1, keepdims=False):
    x = as_tensor(x)
    return LogSumExp.apply(x, axes=_normalize_axes(axis, x.ndim, "logsumexp"), keepdims=keepdims)
