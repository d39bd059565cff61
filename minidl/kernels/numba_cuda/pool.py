"""CUDA twins of kernels/reference/pool.py: max and sum pooling on channels-last arrays
(the ops build 1D, global and average pooling from these four).

Forward: one thread per output element loops over its window's taps in row-major order,
skipping taps in the padding (so no padded copy is made). Max keeps the first maximum
(strictly greater wins) and its tap number i*pw + j, as the reference does.

Backward: one thread per input element gathers the gradients of the windows that
contain it, the taps taken in order. Windows overlap when the stride is smaller than
the pool, so a scatter from the outputs would need atomicAdd and give results that
depend on scheduling; the gather needs neither.

Shapes as in the reference: x (batch, height, width, channels) -> y (batch, out_h,
out_w, channels); pool (ph, pw), stride (sh, sw), padding ((top, bottom), (left, right)).
"""
import math

from numba import cuda

from minidl.backend import get_array_module
from minidl.kernels.numba_cuda.launch import launch
from minidl.kernels.reference.conv import output_size


@cuda.jit(device=True)
def _output_element(i, shape):
    """(n, p, q, ch) of the i-th element of an array of `shape` (C order)."""
    ch = i % shape[3]
    q = (i // shape[3]) % shape[2]
    p = (i // (shape[3] * shape[2])) % shape[1]
    return i // (shape[3] * shape[2] * shape[1]), p, q, ch


@cuda.jit(device=True)
def _window_of(offset, stride, count):
    """The output index o with o * stride == offset, or -1 when there is none in [0, count)."""
    if offset < 0 or offset % stride != 0 or offset // stride >= count:
        return -1
    return offset // stride


@cuda.jit
def _max_pool(x, ph, pw, sh, sw, top, left, y, argmax):
    i = cuda.grid(1)
    if i < y.size:
        n, p, q, ch = _output_element(i, y.shape)
        best = -math.inf
        best_tap = 0
        for ti in range(ph):
            r = p * sh + ti - top
            for tj in range(pw):
                c = q * sw + tj - left
                if 0 <= r < x.shape[1] and 0 <= c < x.shape[2] and x[n, r, c, ch] > best:
                    best = x[n, r, c, ch]
                    best_tap = ti * pw + tj
        y[n, p, q, ch] = best
        argmax[n, p, q, ch] = best_tap


@cuda.jit
def _max_unpool(grad, argmax, ph, pw, sh, sw, top, left, zero, grad_x):
    # d x[r, c] = sum of grad[p, q] over the windows (p, q) that hold (r, c) at their argmax tap.
    i = cuda.grid(1)
    if i < grad_x.size:
        n, r, c, ch = _output_element(i, grad_x.shape)
        total = zero
        for ti in range(ph):
            p = _window_of(r + top - ti, sh, grad.shape[1])
            for tj in range(pw):
                q = _window_of(c + left - tj, sw, grad.shape[2])
                if p >= 0 and q >= 0 and argmax[n, p, q, ch] == ti * pw + tj:
                    total += grad[n, p, q, ch]
        grad_x[n, r, c, ch] = total


@cuda.jit
def _sum_pool(x, ph, pw, sh, sw, top, left, zero, y):
    i = cuda.grid(1)
    if i < y.size:
        n, p, q, ch = _output_element(i, y.shape)
        total = zero
        for ti in range(ph):
            r = p * sh + ti - top
            for tj in range(pw):
                c = q * sw + tj - left
                if 0 <= r < x.shape[1] and 0 <= c < x.shape[2]:
                    total += x[n, r, c, ch]
        y[n, p, q, ch] = total


@cuda.jit
def _sum_unpool(grad, ph, pw, sh, sw, top, left, zero, grad_x):
    # d x[r, c] = sum of grad[p, q] over the windows (p, q) that contain (r, c).
    i = cuda.grid(1)
    if i < grad_x.size:
        n, r, c, ch = _output_element(i, grad_x.shape)
        total = zero
        for ti in range(ph):
            p = _window_of(r + top - ti, sh, grad.shape[1])
            for tj in range(pw):
                q = _window_of(c + left - tj, sw, grad.shape[2])
                if p >= 0 and q >= 0:
                    total += grad[n, p, q, ch]
        grad_x[n, r, c, ch] = total


def _geometry(input_shape, pool, stride, padding):
    """The kernels' scalar arguments (ph, pw, sh, sw, top, left), and the output shape."""
    batch, _, _, channels = input_shape
    out_h, out_w = (output_size(input_shape[1 + a], pool[a], stride[a], 1, *padding[a]) for a in range(2))
    (top, _), (left, _) = padding
    return (pool[0], pool[1], stride[0], stride[1], top, left), (batch, out_h, out_w, channels)


def max_pool2d_forward(x, pool, stride, padding):
    """(y, argmax): the max over each window and its tap number i*pw + j (int64)."""
    xp = get_array_module(x)
    geometry, out_shape = _geometry(x.shape, pool, stride, padding)
    y = xp.empty(out_shape, dtype=x.dtype)
    argmax = xp.empty(out_shape, dtype=xp.int64)
    launch(_max_pool, y.size, xp.ascontiguousarray(x), *geometry, y, argmax)
    return y, argmax


def max_pool2d_backward(grad, argmax, input_shape, pool, stride, padding):
    """d x[p] = the sum of grad over the windows whose argmax is p."""
    xp = get_array_module(grad)
    geometry, _ = _geometry(input_shape, pool, stride, padding)
    grad_x = xp.empty(tuple(input_shape), dtype=grad.dtype)
    launch(_max_unpool, grad_x.size, xp.ascontiguousarray(grad), xp.ascontiguousarray(argmax), *geometry,
           grad.dtype.type(0), grad_x)
    return grad_x


def sum_pool2d_forward(x, pool, stride, padding):
    """y = the sum over each window (taps in the padding add nothing)."""
    xp = get_array_module(x)
    geometry, out_shape = _geometry(x.shape, pool, stride, padding)
    y = xp.empty(out_shape, dtype=x.dtype)
    launch(_sum_pool, y.size, xp.ascontiguousarray(x), *geometry, x.dtype.type(0), y)
    return y


def sum_pool2d_backward(grad, input_shape, pool, stride, padding):
    """d x[p] = the sum of grad over the windows that contain p."""
    xp = get_array_module(grad)
    geometry, _ = _geometry(input_shape, pool, stride, padding)
    grad_x = xp.empty(tuple(input_shape), dtype=grad.dtype)
    launch(_sum_unpool, grad_x.size, xp.ascontiguousarray(grad), *geometry, grad.dtype.type(0), grad_x)
    return grad_x
