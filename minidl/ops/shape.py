"""Ops that move values without computing new ones: reshape, transpose, indexing,
concatenation. Their backwards move the gradient back the same way."""
import numpy as np

from minidl.autograd import Function, Tensor, as_tensor
from minidl.backend import get_array_module


class Reshape(Function):
    """The gradient is reshaped back to the input's shape."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return (grad.reshape(ctx.input_shape),)


class Transpose(Function):
    """The gradient is transposed by the inverse permutation."""

    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, grad):
        return (grad.transpose(np.argsort(ctx.axes)),)


def _is_basic_index(index):
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, np.integer, slice)) or p is None or p is Ellipsis for p in parts)


class GetItem(Function):
    """x[index]; the gradient is scattered back into zeros of x's shape (added where an
    advanced index picks the same element twice)."""

    @staticmethod
    def forward(ctx, x, index):
        ctx.index, ctx.shape, ctx.dtype = index, x.shape, x.dtype
        return x[index]

    @staticmethod
    def backward(ctx, grad):
        xp = get_array_module(grad)
        full = xp.zeros(ctx.shape, dtype=grad.dtype)
        if _is_basic_index(ctx.index):
            full[ctx.index] = grad
        else:
            xp.add.at(full, ctx.index, grad)
        return (full,)


class Concatenate(Function):
    """The gradient is split along the joined axis at the inputs' boundaries."""

    @staticmethod
    def forward(ctx, *arrays, axis):
        ctx.axis = axis
        ctx.bounds = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return get_array_module(*arrays).concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return tuple(get_array_module(grad).split(grad, ctx.bounds, axis=ctx.axis))


def reshape(x, shape):
    x = as_tensor(x)
    shape = tuple(int(n) for n in shape)
    known = int(np.prod([n for n in shape if n != -1]))
    if shape.count(-1) == 0:
        fits = known == x.size
    else:
        fits = shape.count(-1) == 1 and known > 0 and x.size % known == 0
    if not fits:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) into {shape}")
    return Reshape.apply(x, shape=shape)


def transpose(x, axes=None):
    x = as_tensor(x)
    axes = tuple(reversed(range(x.ndim))) if axes is None else tuple(a % x.ndim for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of the {x.ndim} axes")
    return Transpose.apply(x, axes=axes)


def getitem(x, index):
    if isinstance(index, Tensor):
        index = index.data
    if isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return GetItem.apply(x, index=index)


def flatten(x, start_axis=1):
    """Merge the axes from `start_axis` on: (batch, ...) -> (batch, prod(...))."""
    x = as_tensor(x)
    return reshape(x, x.shape[:start_axis] + (-1,))


def concatenate(tensors, axis=-1):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concatenate: needs at least one tensor")
    first = as_tensor(tensors[0])
    tensors = [first] + [as_tensor(t, like=first) for t in tensors[1:]]
    ndim = first.ndim
    axis = axis % ndim if -ndim <= axis < ndim else None
    if axis is None:
        raise ValueError(f"concatenate: axis out of range for {ndim}-dimensional tensors")
    for t in tensors[1:]:
        if t.ndim != ndim or any(t.shape[i] != first.shape[i] for i in range(ndim) if i != axis):
            raise ValueError(
                f"concatenate: shapes {first.shape} and {t.shape} differ outside axis {axis}"
            )
    return Concatenate.apply(*tensors, axis=axis)


def stack(tensors, axis=0):
    """Join tensors along a new axis: concatenation of the inputs with that axis added."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    axis = axis % (tensors[0].ndim + 1)
    return concatenate([reshape(t, t.shape[:axis] + (1,) + t.shape[axis:]) for t in tensors], axis=axis)
