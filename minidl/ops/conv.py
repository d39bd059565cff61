"""Convolution over channels-last sequences and images, as Keras' Conv1D and Conv2D.

Like every deep-learning library this is cross-correlation (the kernel is not flipped).
A 1D convolution is run as a 2D one on an image of height 1, so one Function and one
pair of kernels ("conv", "conv2d_forward" / "conv2d_backward") serve both.

Padding follows TensorFlow. "valid": no padding, out = floor((in - span) / stride) + 1
with span = (k - 1) * dilation + 1. "same": out = ceil(in / stride), padded with
total = max((out - 1) * stride + span - in, 0) zeros, total // 2 before and the rest
after (an even kernel pads one more at the end).
"""
import numbers

from minidl.autograd import Function, as_tensor
from minidl.kernels import get_kernel
from minidl.kernels.reference.conv import BRANCH_POOLINGS  # the reductions every target's branch kernel has

PADDINGS = ("valid", "same")


def check_padding(op, padding):
    if padding not in PADDINGS:
        raise ValueError(f"{op}: padding must be 'valid' or 'same', got {padding!r}")
    return padding


def positive_ints(op, what, value, count):
    """`value` (an int, or a sequence of `count` ints) as a tuple of `count` positive ints."""
    values = (value,) * count if isinstance(value, numbers.Integral) else tuple(value)
    if len(values) != count or not all(isinstance(v, numbers.Integral) and v >= 1 for v in values):
        form = "a positive int" if count == 1 else f"a positive int or {count} of them"
        raise ValueError(f"{op}: {what} must be {form}, got {value!r}")
    return tuple(int(v) for v in values)


def window_geometry(op, window_name, axis_name, size, window, stride, dilation, padding):
    """(out, pad_before, pad_after) along one axis for a window of `window` taps."""
    span = (window - 1) * dilation + 1
    if padding == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + span - size, 0)
        return out, total // 2, total - total // 2
    if span > size:
        spread = f" (spanning {span} with dilation {dilation})" if dilation > 1 else ""
        raise ValueError(f"{op}: the {window_name} of size {window}{spread} is larger than the input "
                         f"{axis_name} {size} with padding 'valid'; use padding='same' or a smaller {window_name}")
    return (size - span) // stride + 1, 0, 0


def as_image(x):
    """A sequence (batch, length, c) as an image of height 1, (batch, 1, length, c);
    an image passes through."""
    return x[:, None] if x.ndim == 3 else x


def kernel_as_image(kernel):
    """A 1D kernel (k, c_in, c_out) as a 2D one of height 1, (1, k, c_in, c_out)."""
    return kernel[None] if kernel.ndim == 3 else kernel


class Convolution(Function):
    """y[n, p, :] = sum_j x_pad[n, p*s + j*d, :] @ kernel[j]   (j, p run over 1 or 2 axes)
    x (batch, *spatial, c_in), kernel (*k, c_in, c_out) -> y (batch, *out, c_out);
    d x_pad[n, p*s + j*d, :] += grad[n, p, :] @ kernel[j]^T; d kernel[j] = sum_{n, p} x_pad[n, p*s + j*d, :]^T grad[n, p, :].
    stride, padding, dilation are 2D geometry (height first; height 1 for a sequence)."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation):
        ctx.save(x, kernel)
        ctx.geometry = (stride, padding, dilation)
        image, image_kernel = as_image(x), kernel_as_image(kernel)
        y = get_kernel("conv", "conv2d_forward", image, image_kernel)(image, image_kernel, stride, padding, dilation)
        return y[:, 0] if x.ndim == 3 else y

    @staticmethod
    def backward(ctx, grad):
        x, kernel = ctx.saved
        image, image_kernel, image_grad = as_image(x), kernel_as_image(kernel), as_image(grad)
        backward = get_kernel("conv", "conv2d_backward", image_grad, image, image_kernel)
        grad_x, grad_kernel = backward(image_grad, image, image_kernel, *ctx.geometry)
        return grad_x.reshape(x.shape), grad_kernel.reshape(kernel.shape)


def _convolve(op, x, kernel, bias, stride, padding, dilation, axis_names):
    """Check the arguments of conv1d / conv2d in the user's terms, then convolve."""
    x, kernel = as_tensor(x), as_tensor(kernel)
    spatial = len(axis_names)
    if x.ndim != spatial + 2:
        raise ValueError(f"{op}: input must be (batch, {', '.join(axis_names)}, channels), got shape {x.shape}")
    if kernel.ndim != spatial + 2:
        sizes = ", ".join(f"kernel_{name}" for name in axis_names)
        raise ValueError(f"{op}: kernel must be ({sizes}, in_channels, filters), got shape {kernel.shape}")
    if x.shape[-1] != kernel.shape[-2]:
        raise ValueError(f"{op}: input has {x.shape[-1]} channels, kernel expects {kernel.shape[-2]}")
    if x.dtype != kernel.dtype:
        raise TypeError(f"{op}: input is {x.dtype} but kernel is {kernel.dtype}; cast one of them")
    check_padding(op, padding)
    stride = positive_ints(op, "stride", stride, spatial)
    dilation = positive_ints(op, "dilation", dilation, spatial)
    pads = []
    for a, name in enumerate(axis_names):
        _, before, after = window_geometry(op, "kernel", name, x.shape[1 + a], kernel.shape[a],
                                           stride[a], dilation[a], padding)
        pads.append((before, after))
    if spatial == 1:  # a sequence is an image of height 1
        stride, pads, dilation = (1,) + stride, [(0, 0)] + pads, (1,) + dilation
    out = Convolution.apply(x, kernel, stride=stride, padding=tuple(pads), dilation=dilation)
    if bias is None:
        return out
    bias = as_tensor(bias)
    if bias.shape != (kernel.shape[-1],):
        raise ValueError(f"{op}: bias must have shape ({kernel.shape[-1]},) for {kernel.shape[-1]} filters, "
                         f"got {bias.shape}")
    return out + bias  # the add's backward sums the gradient over batch and positions


def conv1d(x, kernel, bias=None, stride=1, padding="valid", dilation=1):
    """1D convolution: x (batch, length, c_in), kernel (k, c_in, c_out), bias (c_out,)
    -> (batch, out_length, c_out); padding 'valid' or 'same' as TensorFlow.

    A kernel of three ones is a moving sum of three neighbours:

    >>> import numpy as np, minidl
    >>> x = minidl.tensor(np.arange(5.0).reshape(1, 5, 1))       # 0 1 2 3 4
    >>> kernel = minidl.tensor(np.ones((3, 1, 1)))
    >>> conv1d(x, kernel).numpy().ravel().tolist()
    [3.0, 6.0, 9.0]
    >>> conv1d(x, kernel, padding="same").numpy().ravel().tolist()
    [1.0, 3.0, 6.0, 9.0, 7.0]
    """
    return _convolve("conv1d", x, kernel, bias, stride, padding, dilation, ("length",))


def conv2d(x, kernel, bias=None, stride=1, padding="valid", dilation=1):
    """2D convolution: x (batch, height, width, c_in), kernel (kh, kw, c_in, c_out),
    bias (c_out,) -> (batch, out_h, out_w, c_out); stride and dilation an int or a
    (rows, columns) pair; padding 'valid' or 'same' as TensorFlow."""
    return _convolve("conv2d", x, kernel, bias, stride, padding, dilation, ("height", "width"))


class ConvELUPool1D(Function):
    """The fused convolution branch: y = pool(elu(conv1d(x, kernel, 'same') + bias)),
    the pool a sum, maximum or average over windows of `window` steps (kernels'
    conv1d_elu_pool_*). Backward: d z = d y * p * elu'(z), with p the pool's share of
    each step (1, 1 / window, or 1 at the maximum alone), then the convolution's own
    gradients of z (see Convolution). Kept for backward: for the maximum the step of
    each maximum, for the sum and average elu'(z), one number per step and filter (where
    composing the layers keeps two, z and elu(z)); so backward needs no fourth product
    to compute z again."""

    @staticmethod
    def forward(ctx, x, kernel, bias, alpha, pooling, window, squeeze):
        # squeeze: one window over the whole input, returned as (batch, filters).
        save = any(ctx.needs_input_grad)
        forward = get_kernel("conv", "conv1d_elu_pool_forward", x, kernel)
        y, saved = forward(x, kernel, bias, alpha, pooling, window, save)
        if save:
            ctx.save(x, kernel, y, saved)
            ctx.settings = (alpha, pooling, window)
            ctx.squeeze = squeeze
        return y[:, 0] if squeeze else y

    @staticmethod
    def backward(ctx, grad):
        x, kernel, y, saved = ctx.saved
        grad = grad[:, None] if ctx.squeeze else grad
        backward = get_kernel("conv", "conv1d_elu_pool_backward", grad, x, kernel)
        return backward(grad, x, kernel, *ctx.settings, y, saved)


def conv1d_elu_pool(x, kernel, bias, pooling="sum", pool_size=None, alpha=1.0):
    """A convolution branch as one op: Conv1D(padding='same') + bias -> ELU(alpha) ->
    a reduction over time: x (batch, length, c_in), kernel (k, c_in, filters), bias
    (filters,) -> (batch, filters) with pool_size None (one reduction over the whole
    sequence, as GlobalMaxPooling1D), else (batch, length // pool_size, filters) over
    windows of pool_size steps (as MaxPooling1D(pool_size) with padding 'valid').
    pooling 'sum', 'max' or 'average'. Equal to composing the four ops, and faster:
    the Numba kernel never builds the (batch, length, filters) pre-activation or its ELU.

    >>> import numpy as np, minidl
    >>> x = minidl.tensor(np.arange(5.0).reshape(1, 5, 1))       # 0 1 2 3 4
    >>> kernel, bias = minidl.tensor(np.ones((3, 1, 1))), minidl.tensor(np.array([-3.0]))
    >>> conv1d_elu_pool(x, kernel, bias, pooling="max").numpy().ravel().tolist()   # max of elu([-2, 0, 3, 6, 4])
    [6.0]
    """
    x, kernel, bias = as_tensor(x), as_tensor(kernel), as_tensor(bias)
    op = "conv1d_elu_pool"
    if x.ndim != 3:
        raise ValueError(f"{op}: input must be (batch, length, channels), got shape {x.shape}")
    if kernel.ndim != 3:
        raise ValueError(f"{op}: kernel must be (kernel_length, in_channels, filters), got shape {kernel.shape}")
    if x.shape[-1] != kernel.shape[1]:
        raise ValueError(f"{op}: input has {x.shape[-1]} channels, kernel expects {kernel.shape[1]}")
    if bias.shape != (kernel.shape[2],):
        raise ValueError(f"{op}: bias must have shape ({kernel.shape[2]},) for {kernel.shape[2]} filters, "
                         f"got {bias.shape}")
    if not x.dtype == kernel.dtype == bias.dtype:
        raise TypeError(f"{op}: input, kernel and bias must share one dtype, got {x.dtype}, {kernel.dtype}, "
                        f"{bias.dtype}")
    if pooling not in BRANCH_POOLINGS:
        raise ValueError(f"{op}: pooling must be one of {', '.join(BRANCH_POOLINGS)}, got {pooling!r}")
    if not alpha > 0:
        raise ValueError(f"{op}: alpha must be positive, got {alpha}")
    length = x.shape[1]
    window = length if pool_size is None else positive_ints(op, "pool_size", pool_size, 1)[0]
    if window > length:
        raise ValueError(f"{op}: the pool of size {window} is longer than the input length {length}")
    return ConvELUPool1D.apply(x, kernel, bias, alpha=float(alpha), pooling=pooling, window=window,
                               squeeze=pool_size is None)
