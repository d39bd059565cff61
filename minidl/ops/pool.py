"""Pooling over channels-last sequences and images, as Keras' pooling layers.

Two primitives, max and sum pooling, each one Function over 1 or 2 spatial axes (a
sequence is an image of height 1, as in ops/conv.py) on the "pool" kernels. The rest
is composed: average pooling is sum pooling divided by the number of real (unpadded)
elements in each window, as TensorFlow does with "same" padding; global max pooling is
max pooling with one window over the whole input; global sum and average pooling are
reduce.sum and reduce.mean over the spatial axes. strides default to pool_size, as in Keras;
padding "valid" / "same" follows TensorFlow (see ops/conv.py).
"""
from minidl.autograd import Function, as_tensor
from minidl.backend import get_array_module
from minidl.kernels import get_kernel
from minidl.ops.conv import as_image, check_padding, positive_ints, window_geometry
from minidl.ops import reduce

SEQUENCE_AXES = ("length",)
IMAGE_AXES = ("height", "width")


class MaxPool(Function):
    """y[n, p, c] = max over the window w(p) of x[n, :, c];
    x (batch, *spatial, c) -> (batch, *out, c); d x[n, argmax_w(p), c] += grad[n, p, c]
    where argmax is the first maximum, saved by the forward."""

    @staticmethod
    def forward(ctx, x, pool, stride, padding):
        image = as_image(x)
        y, argmax = get_kernel("pool", "max_pool2d_forward", image)(image, pool, stride, padding)
        ctx.save(argmax)
        ctx.geometry, ctx.image_shape, ctx.input_shape = (pool, stride, padding), image.shape, x.shape
        return y[:, 0] if x.ndim == 3 else y

    @staticmethod
    def backward(ctx, grad):
        (argmax,) = ctx.saved
        image_grad = as_image(grad)
        backward = get_kernel("pool", "max_pool2d_backward", image_grad)
        return (backward(image_grad, argmax, ctx.image_shape, *ctx.geometry).reshape(ctx.input_shape),)


class SumPool(Function):
    """y[n, p, c] = sum over the window w(p) of x[n, :, c];
    x (batch, *spatial, c) -> (batch, *out, c); d x[n, i, c] = sum of grad[n, p, c] over the windows p containing i."""

    @staticmethod
    def forward(ctx, x, pool, stride, padding):
        image = as_image(x)
        ctx.geometry, ctx.image_shape, ctx.input_shape = (pool, stride, padding), image.shape, x.shape
        y = get_kernel("pool", "sum_pool2d_forward", image)(image, pool, stride, padding)
        return y[:, 0] if x.ndim == 3 else y

    @staticmethod
    def backward(ctx, grad):
        image_grad = as_image(grad)
        backward = get_kernel("pool", "sum_pool2d_backward", image_grad)
        return (backward(image_grad, ctx.image_shape, *ctx.geometry).reshape(ctx.input_shape),)


def _checked_input(op, x, axis_names):
    x = as_tensor(x)
    if x.ndim != len(axis_names) + 2:
        raise ValueError(f"{op}: input must be (batch, {', '.join(axis_names)}, channels), got shape {x.shape}")
    return x


def _pool_geometry(op, x, pool_size, strides, padding, axis_names):
    """2D (pool, stride, padding) for the kernels; a sequence gets a height of 1."""
    spatial = len(axis_names)
    check_padding(op, padding)
    pool = positive_ints(op, "pool_size", pool_size, spatial)
    stride = pool if strides is None else positive_ints(op, "strides", strides, spatial)
    pads = tuple(window_geometry(op, "pool", name, x.shape[1 + a], pool[a], stride[a], 1, padding)[1:]
                 for a, name in enumerate(axis_names))
    if spatial == 1:
        return (1,) + pool, (1,) + stride, ((0, 0),) + pads
    return pool, stride, pads


def _pool(op, function, x, pool_size, strides, padding, axis_names):
    x = _checked_input(op, x, axis_names)
    pool, stride, pads = _pool_geometry(op, x, pool_size, strides, padding, axis_names)
    return function.apply(x, pool=pool, stride=stride, padding=pads)


def _avg_pool(op, x, pool_size, strides, padding, axis_names):
    """sum_pool(x) / (number of real elements in each window): the count is the sum
    pooling of ones, so padded positions are not counted (TensorFlow's rule)."""
    x = _checked_input(op, x, axis_names)
    pool, stride, pads = _pool_geometry(op, x, pool_size, strides, padding, axis_names)
    xp = get_array_module(x.data)
    ones = xp.ones((1,) + x.shape[1:-1] + (1,), dtype=x.dtype)
    image_ones = as_image(ones)
    counts = get_kernel("pool", "sum_pool2d_forward", image_ones)(image_ones, pool, stride, pads)
    if x.ndim == 3:
        counts = counts[:, 0]
    return SumPool.apply(x, pool=pool, stride=stride, padding=pads) / counts


def max_pool1d(x, pool_size=2, strides=None, padding="valid"):
    """Max over windows of `pool_size` steps: (batch, length, c) -> (batch, out_length, c)."""
    return _pool("max_pool1d", MaxPool, x, pool_size, strides, padding, SEQUENCE_AXES)


def max_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Max over pool_size windows (int or pair): (batch, h, w, c) -> (batch, out_h, out_w, c)."""
    return _pool("max_pool2d", MaxPool, x, pool_size, strides, padding, IMAGE_AXES)


def sum_pool1d(x, pool_size=2, strides=None, padding="valid"):
    """Sum over windows of `pool_size` steps: (batch, length, c) -> (batch, out_length, c)."""
    return _pool("sum_pool1d", SumPool, x, pool_size, strides, padding, SEQUENCE_AXES)


def sum_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Sum over pool_size windows (int or pair): (batch, h, w, c) -> (batch, out_h, out_w, c)."""
    return _pool("sum_pool2d", SumPool, x, pool_size, strides, padding, IMAGE_AXES)


def avg_pool1d(x, pool_size=2, strides=None, padding="valid"):
    """Mean over windows of `pool_size` steps, padding not counted: (batch, length, c) -> (batch, out_length, c)."""
    return _avg_pool("avg_pool1d", x, pool_size, strides, padding, SEQUENCE_AXES)


def avg_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Mean over pool_size windows, padding not counted: (batch, h, w, c) -> (batch, out_h, out_w, c)."""
    return _avg_pool("avg_pool2d", x, pool_size, strides, padding, IMAGE_AXES)


def _global_max(op, x, axis_names):
    """One max-pooling window over the whole input, so ties go to the first maximum."""
    x = _checked_input(op, x, axis_names)
    y = _pool(op, MaxPool, x, x.shape[1:-1], None, "valid", axis_names)
    return y.reshape(x.shape[0], x.shape[-1])


def global_max_pool1d(x):
    """Max over time: (batch, length, c) -> (batch, c)."""
    return _global_max("global_max_pool1d", x, SEQUENCE_AXES)


def global_max_pool2d(x):
    """Max over height and width: (batch, h, w, c) -> (batch, c)."""
    return _global_max("global_max_pool2d", x, IMAGE_AXES)


def global_sum_pool1d(x):
    """Sum over time: (batch, length, c) -> (batch, c)."""
    return reduce.sum(_checked_input("global_sum_pool1d", x, SEQUENCE_AXES), axis=1)


def global_sum_pool2d(x):
    """Sum over height and width: (batch, h, w, c) -> (batch, c)."""
    return reduce.sum(_checked_input("global_sum_pool2d", x, IMAGE_AXES), axis=(1, 2))


def global_avg_pool1d(x):
    """Mean over time: (batch, length, c) -> (batch, c)."""
    return reduce.mean(_checked_input("global_avg_pool1d", x, SEQUENCE_AXES), axis=1)


def global_avg_pool2d(x):
    """Mean over height and width: (batch, h, w, c) -> (batch, c)."""
    return reduce.mean(_checked_input("global_avg_pool2d", x, IMAGE_AXES), axis=(1, 2))
