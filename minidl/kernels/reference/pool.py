"""2D max and sum pooling on channels-last arrays, and their gradients. 1D pooling is
the same on an image of height 1, global pooling is one window over the whole input,
and average pooling is sum pooling divided by the count of real elements (ops/pool.py
composes those), so these four kernels serve every pooling op.

Shapes: x (batch, height, width, channels) -> y (batch, out_h, out_w, channels), with
pool (ph, pw), stride (sh, sw) and padding ((top, bottom), (left, right)) as in
kernels/reference/conv.py; the loops run over the ph*pw window taps, as there.
"""
from minidl.backend import get_array_module
from minidl.kernels.reference.conv import output_size, padded, tap_window, unpadded


def _output_hw(shape, pool, stride, padding):
    return tuple(output_size(shape[1 + a], pool[a], stride[a], 1, *padding[a]) for a in range(2))


def _taps(pool):
    """(tap number, i, j) over the window in row-major order: the order argmax counts in."""
    return [(i * pool[1] + j, i, j) for i in range(pool[0]) for j in range(pool[1])]


def max_pool2d_forward(x, pool, stride, padding):
    """y = the max over each window; argmax = its tap number i*pw + j (the first one on
    ties), an int64 array shaped like y. The padding is -inf, so it never wins."""
    xp = get_array_module(x)
    out_h, out_w = _output_hw(x.shape, pool, stride, padding)
    x_pad = padded(x, padding, fill=-xp.inf)
    y = argmax = None
    for tap, i, j in _taps(pool):
        window = x_pad[tap_window(out_h, out_w, stride, (1, 1), i, j)]
        if y is None:
            y, argmax = window.copy(), xp.zeros(window.shape, dtype=xp.int64)
            continue
        better = window > y  # strictly greater: the first maximum keeps the gradient
        y = xp.where(better, window, y)
        argmax[better] = tap
    return y, argmax


def max_pool2d_backward(grad, argmax, input_shape, pool, stride, padding):
    """d x[position of the window's argmax] += grad[window]; 0 elsewhere."""
    xp = get_array_module(grad)
    (top, bottom), (left, right) = padding
    batch, height, width, channels = input_shape
    grad_x_pad = xp.zeros((batch, height + top + bottom, width + left + right, channels), dtype=grad.dtype)
    for tap, i, j in _taps(pool):
        window = tap_window(grad.shape[1], grad.shape[2], stride, (1, 1), i, j)
        grad_x_pad[window] += xp.where(argmax == tap, grad, 0)
    return unpadded(grad_x_pad, padding, height, width)


def sum_pool2d_forward(x, pool, stride, padding):
    """y = the sum over each window (the zero padding adds nothing)."""
    out_h, out_w = _output_hw(x.shape, pool, stride, padding)
    x_pad = padded(x, padding)
    y = None
    for _, i, j in _taps(pool):
        window = x_pad[tap_window(out_h, out_w, stride, (1, 1), i, j)]
        y = window.copy() if y is None else y + window
    return y


def sum_pool2d_backward(grad, input_shape, pool, stride, padding):
    """d x[p] = the sum of grad over the windows that contain p."""
    xp = get_array_module(grad)
    (top, bottom), (left, right) = padding
    batch, height, width, channels = input_shape
    grad_x_pad = xp.zeros((batch, height + top + bottom, width + left + right, channels), dtype=grad.dtype)
    for _, i, j in _taps(pool):
        grad_x_pad[tap_window(grad.shape[1], grad.shape[2], stride, (1, 1), i, j)] += grad
    return unpadded(grad_x_pad, padding, height, width)
