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
"""
from minidl.backend import get_array_module


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
