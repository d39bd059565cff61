"""Numba twins of kernels/reference/pool.py: the same names, signatures and results,
written as one parallel pass over the batch that skips taps falling in the padding
instead of building a padded copy. Samples never share an input element, so the
backward scatters run in parallel over the batch without collisions.
"""
import numpy as np
from numba import njit, prange

from minidl.kernels.reference.conv import output_size


def _output_hw(shape, pool, stride, padding):
    return tuple(output_size(shape[1 + a], pool[a], stride[a], 1, *padding[a]) for a in range(2))


@njit(parallel=True, cache=True)
def _max_pool(x, ph, pw, sh, sw, top, left, y, argmax):
    batch, height, width, channels = x.shape
    for n in prange(batch):
        for p in range(y.shape[1]):
            for q in range(y.shape[2]):
                for ch in range(channels):
                    best, best_tap = -np.inf, 0
                    for i in range(ph):
                        r = p * sh + i - top
                        if r < 0 or r >= height:
                            continue
                        for j in range(pw):
                            c = q * sw + j - left
                            if c < 0 or c >= width:
                                continue
                            # strictly greater: the first maximum keeps the gradient
                            if x[n, r, c, ch] > best:
                                best, best_tap = x[n, r, c, ch], i * pw + j
                    y[n, p, q, ch] = best
                    argmax[n, p, q, ch] = best_tap


@njit(parallel=True, cache=True)
def _max_unpool(grad, argmax, pw, sh, sw, top, left, grad_x):
    for n in prange(grad.shape[0]):
        for p in range(grad.shape[1]):
            for q in range(grad.shape[2]):
                for ch in range(grad.shape[3]):
                    tap = argmax[n, p, q, ch]
                    r = p * sh + tap // pw - top
                    c = q * sw + tap % pw - left
                    # A window of only -inf (or NaN) keeps tap 0, which may lie in the
                    # padding: that gradient is dropped, as the reference's crop does.
                    if 0 <= r < grad_x.shape[1] and 0 <= c < grad_x.shape[2]:
                        grad_x[n, r, c, ch] += grad[n, p, q, ch]


@njit(parallel=True, cache=True)
def _sum_windows(inputs, windows, ph, pw, sh, sw, top, left, gather):
    """One pass over every (window, tap) pair, in either direction: gather adds each
    window's taps of `inputs` into `windows` (the forward); otherwise each window's value
    is added back to its taps in `inputs` (the backward, the forward's transpose)."""
    batch, height, width, channels = inputs.shape
    for n in prange(batch):
        for p in range(windows.shape[1]):
            for q in range(windows.shape[2]):
                for i in range(ph):
                    r = p * sh + i - top
                    if r < 0 or r >= height:
                        continue
                    for j in range(pw):
                        c = q * sw + j - left
                        if c < 0 or c >= width:
                            continue
                        # the direction is chosen outside the channel loop, which stays a plain add
                        if gather:
                            for ch in range(channels):
                                windows[n, p, q, ch] += inputs[n, r, c, ch]
                        else:
                            for ch in range(channels):
                                inputs[n, r, c, ch] += windows[n, p, q, ch]


def max_pool2d_forward(x, pool, stride, padding):
    """y = the max over each window; argmax = its tap number i*pw + j (first on ties)."""
    out_h, out_w = _output_hw(x.shape, pool, stride, padding)
    shape = (x.shape[0], out_h, out_w, x.shape[3])
    y, argmax = np.empty(shape, dtype=x.dtype), np.empty(shape, dtype=np.int64)
    _max_pool(np.ascontiguousarray(x), pool[0], pool[1], stride[0], stride[1], padding[0][0], padding[1][0],
              y, argmax)
    return y, argmax


def max_pool2d_backward(grad, argmax, input_shape, pool, stride, padding):
    """d x[position of the window's argmax] += grad[window]; 0 elsewhere."""
    grad_x = np.zeros(input_shape, dtype=grad.dtype)
    _max_unpool(np.ascontiguousarray(grad), np.ascontiguousarray(argmax), pool[1], stride[0], stride[1],
                padding[0][0], padding[1][0], grad_x)
    return grad_x


def sum_pool2d_forward(x, pool, stride, padding):
    """y = the sum over each window (taps in the padding add nothing)."""
    out_h, out_w = _output_hw(x.shape, pool, stride, padding)
    y = np.zeros((x.shape[0], out_h, out_w, x.shape[3]), dtype=x.dtype)
    _sum_windows(np.ascontiguousarray(x), y, pool[0], pool[1], stride[0], stride[1], padding[0][0], padding[1][0],
                 True)
    return y


def sum_pool2d_backward(grad, input_shape, pool, stride, padding):
    """d x[p] = the sum of grad over the windows that contain p."""
    grad_x = np.zeros(input_shape, dtype=grad.dtype)
    _sum_windows(grad_x, np.ascontiguousarray(grad), pool[0], pool[1], stride[0], stride[1], padding[0][0],
                 padding[1][0], False)
    return grad_x
