"""2D convolution (cross-correlation, as in Keras) on channels-last arrays, and its
gradients. A 1D convolution is the same thing on an image of height 1 (ops/conv.py
inserts that axis), so one pair of kernels serves both.

Shapes: x (batch, height, width, c_in), kernel (kh, kw, c_in, c_out),
y (batch, out_h, out_w, c_out). Geometry comes in pairs, (rows, columns):
stride (sh, sw), padding ((top, bottom), (left, right)) of zeros, dilation (dh, dw).

    y[n, p, q, :] = sum_{i, j} x_pad[n, p*sh + i*dh, q*sw + j*dw, :] @ kernel[i, j]

The loop runs over the kernel's taps (i, j): each tap is one BLAS product of a strided
view of the padded input, (batch*out_h*out_w, c_in) @ (c_in, c_out). There are only
kh*kw taps, so the Python loop is short and the work stays in BLAS.

The fused branch, conv1d_elu_pool_*, is the URL models' convolution, bias, ELU and
reduction over time in one kernel pair, so that a target can run it without keeping the
pre-activation or the ELU's output (see there).
"""
from minidl.backend import get_array_module
from minidl.kernels.reference.activation import elu_backward, elu_forward


def padded(x, padding, fill=0.0):
    """x with `fill` added around its height and width: ((top, bottom), (left, right))."""
    xp = get_array_module(x)
    (top, bottom), (left, right) = padding
    if top == bottom == left == right == 0:
        return x
    return xp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)


def tap_window(out_h, out_w, stride, dilation, i, j):
    """The index of the padded-input positions that tap (i, j) meets, one per output."""
    sh, sw = stride
    dh, dw = dilation
    rows = slice(i * dh, i * dh + (out_h - 1) * sh + 1, sh)
    cols = slice(j * dw, j * dw + (out_w - 1) * sw + 1, sw)
    return (slice(None), rows, cols, slice(None))


def output_size(size, window, stride, dilation, pad_before, pad_after):
    """Outputs along one axis: floor((size + pads - (window-1)*dilation - 1) / stride) + 1."""
    return (size + pad_before + pad_after - (window - 1) * dilation - 1) // stride + 1


def unpadded(x_pad, padding, height, width):
    """The inverse of `padded`: the (height, width) block inside the padding."""
    (top, _), (left, _) = padding
    return x_pad[:, top:top + height, left:left + width, :]


def _output_hw(x, kernel, stride, padding, dilation):
    return tuple(
        output_size(x.shape[1 + a], kernel.shape[a], stride[a], dilation[a], *padding[a]) for a in range(2)
    )


def conv2d_forward(x, kernel, stride, padding, dilation):
    """y = sum over taps (i, j) of x_pad[tap window] @ kernel[i, j] -> (batch, out_h, out_w, c_out)."""
    xp = get_array_module(x)
    out_h, out_w = _output_hw(x, kernel, stride, padding, dilation)
    x_pad = padded(x, padding)
    y = xp.zeros((x.shape[0], out_h, out_w, kernel.shape[3]), dtype=x.dtype)
    for i in range(kernel.shape[0]):
        for j in range(kernel.shape[1]):
            window = x_pad[tap_window(out_h, out_w, stride, dilation, i, j)]
            y += xp.tensordot(window, kernel[i, j], axes=1)
    return y


def conv2d_backward(grad, x, kernel, stride, padding, dilation):
    """Per tap (i, j): d kernel[i, j] = x_pad[window]^T @ grad summed over batch and
    positions; d x_pad[window] += grad @ kernel[i, j]^T; the padding is then cut off.
    Returns (grad_x, grad_kernel)."""
    xp = get_array_module(x)
    out_h, out_w = grad.shape[1], grad.shape[2]
    x_pad = padded(x, padding)
    grad_x_pad = xp.zeros_like(x_pad)
    grad_kernel = xp.empty_like(kernel)
    spatial_axes = ([0, 1, 2], [0, 1, 2])  # batch, out_h, out_w
    for i in range(kernel.shape[0]):
        for j in range(kernel.shape[1]):
            window = tap_window(out_h, out_w, stride, dilation, i, j)
            grad_kernel[i, j] = xp.tensordot(x_pad[window], grad, axes=spatial_axes)
            grad_x_pad[window] += xp.tensordot(grad, kernel[i, j], axes=([3], [1]))
    return unpadded(grad_x_pad, padding, x.shape[1], x.shape[2]), grad_kernel


# ------------------------------------------------------- fused 1D convolution branch
#: The reductions over time the fused branch offers, by name.
BRANCH_POOLINGS = ("sum", "max", "average")


def same_padding_1d(kernel_size):
    """(before, after) zeros of 'same' padding at stride 1, as TensorFlow: an even
    kernel pads one more at the end."""
    return (kernel_size - 1) // 2, kernel_size // 2


def _branch_pre_activation(x, kernel, bias):
    """z = conv1d(x, kernel, 'same') + bias: (batch, time, filters), tap by tap."""
    xp = get_array_module(x)
    steps, size = x.shape[1], kernel.shape[0]
    before, after = same_padding_1d(size)
    x_pad = xp.pad(x, ((0, 0), (before, after), (0, 0)))
    z = xp.zeros((x.shape[0], steps, kernel.shape[2]), dtype=x.dtype) + bias
    for j in range(size):
        z += x_pad[:, j:j + steps] @ kernel[j]
    return z


def _windows(array, window):
    """(batch, time, filters) -> (batch, time // window, window, filters): the complete
    windows of `window` steps (steps after the last complete one are dropped, as
    pooling with padding 'valid' does)."""
    count = array.shape[1] // window
    return array[:, :count * window].reshape(array.shape[0], count, window, array.shape[2])


def conv1d_elu_pool_forward(x, kernel, bias, alpha, pooling, window, save):
    """A convolution branch in one op:

        y[n, w, f] = pool over t in window w of elu(z[n, t, f]),
        z = conv1d(x, kernel, padding='same') + bias

    x (batch, time, c_in), kernel (k, c_in, filters), bias (filters,); windows of
    `window` steps (window = time: one global reduction); pooling 'sum', 'max' or
    'average'. Returns y (batch, time // window, filters) and, with `save`, what
    backward needs: for 'max' the step of each maximum (batch, time // window,
    filters), for 'sum' and 'average' elu'(z) (batch, time, filters); else None.
    """
    xp = get_array_module(x)
    activated = elu_forward(_branch_pre_activation(x, kernel, bias), alpha)
    windows = _windows(activated, window)
    if pooling == "max":
        argmax = windows.argmax(axis=2)
        y = xp.take_along_axis(windows, argmax[:, :, None], axis=2)[:, :, 0]
        steps = argmax + (xp.arange(windows.shape[1]) * window)[None, :, None]
        return y, steps.astype(xp.int32) if save else None
    y = windows.sum(axis=2)
    y = y / window if pooling == "average" else y
    if not save:
        return y, None
    # elu'(z) from elu(z), as the ELU op's backward has it (the output for the input).
    slope = elu_backward(xp.ones_like(activated), activated, activated, alpha)
    slope[:, windows.shape[1] * window:] = 0  # past the last complete window: no gradient
    return y, slope


def conv1d_elu_pool_backward(grad, x, kernel, alpha, pooling, window, y, saved):
    """Gradients of conv1d_elu_pool_forward, from what its forward saved (the step of
    each maximum, or the ELU's slope at every step):

        d z[n, t, f] = d y[n, w(t), f] * p[n, t, f] * elu'(z[n, t, f]),
        elu'(z) = 1 (z > 0) or alpha e^z,

    with p = 1 (sum), 1 / window (average) or 1 at the window's maximum and 0 elsewhere
    (max); then d kernel[j] = sum_{n,t} x_pad[n, t + j]^T d z[n, t], d bias = sum d z and
    d x_pad[n, t + j] += d z[n, t] @ kernel[j]^T, the padding cut off.
    Returns (grad_x, grad_kernel, grad_bias).
    """
    xp = get_array_module(x)
    batch, steps, _ = x.shape
    size, filters = kernel.shape[0], kernel.shape[2]
    count = steps // window
    spread = xp.zeros((batch, steps, filters), dtype=x.dtype)
    if pooling == "max":
        rows, windows, columns = xp.meshgrid(xp.arange(batch), xp.arange(count), xp.arange(filters), indexing="ij")
        # elu' at each maximum from its output y, as the forward's slope above.
        spread[rows, saved, columns] = elu_backward(grad, y, y, alpha)
        grad_z = spread
    else:
        share = grad / window if pooling == "average" else grad
        spread[:, :count * window] = xp.repeat(share, window, axis=1)
        grad_z = spread * saved
    before, after = same_padding_1d(size)
    x_pad = xp.pad(x, ((0, 0), (before, after), (0, 0)))
    grad_x_pad = xp.zeros_like(x_pad)
    grad_kernel = xp.empty_like(kernel)
    flat_grad = grad_z.reshape(batch * steps, filters)
    for j in range(size):
        grad_kernel[j] = x_pad[:, j:j + steps].reshape(batch * steps, -1).T @ flat_grad
        grad_x_pad[:, j:j + steps] += grad_z @ kernel[j].T
    return grad_x_pad[:, before:before + steps], grad_kernel, grad_z.sum(axis=(0, 1))
