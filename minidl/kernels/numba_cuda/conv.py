"""CUDA twins of kernels/reference/conv.py: 2D convolution on channels-last arrays as
im2col + one cuBLAS product (Chellapilla et al. 2006), and the URL models' fused branch
conv1d -> bias -> ELU -> sum/max/average over windows of time.

Shapes and geometry as in the reference: x (batch, height, width, c_in), kernel
(kh, kw, c_in, c_out), stride (sh, sw), padding ((top, bottom), (left, right)),
dilation (dh, dw). The column matrix has one row per output position (n, p, q) and one
column per (tap i, tap j, input channel), the C order of `kernel.reshape(-1, c_out)`:

    cols[(n, p, q), (i, j, ch)] = x[n, p*sh + i*dh - top, q*sw + j*dw - left, ch]  (0 outside)
    y = cols @ kernel.reshape(kh*kw*c_in, c_out)

Backward: d kernel = cols^T @ grad and d cols = grad @ kernel^T (the array module's
product: cuBLAS on a GPU), then col2im gathers, for every input element, the entries of
d cols that read it. Gathering (one thread per input element, taps in order) needs no
atomics, so it is deterministic.

The fused branch is a 1D convolution with 'same' padding, so it reuses im2col and
col2im on an image of height 1; what it fuses is everything after the product: one
thread per output (sample, window, filter) adds the bias, applies the ELU and reduces
its window, writing only y and what backward needs (the step of each maximum, or
elu'(z) at every step), never z or elu(z) in full.
"""
import math

from numba import cuda

from minidl.backend import get_array_module
from minidl.kernels.numba_cuda.launch import launch
from minidl.kernels.reference.conv import output_size, same_padding_1d


@cuda.jit(device=True)
def _element(i, shape):
    """(n, a, b, ch) of the i-th element of a 4-D array of `shape` (C order)."""
    ch = i % shape[3]
    b = (i // shape[3]) % shape[2]
    a = (i // (shape[3] * shape[2])) % shape[1]
    return i // (shape[3] * shape[2] * shape[1]), a, b, ch


@cuda.jit
def _im2col(x, kh, kw, sh, sw, top, left, dh, dw, out_h, out_w, cols):
    # Thread i: element (row, k) of cols, row = (n, p, q), k = (ti, tj, ch).
    i = cuda.grid(1)
    if i < cols.size:
        channels = x.shape[3]
        taps = cols.shape[1]
        row, k = i // taps, i % taps
        q, p, n = row % out_w, (row // out_w) % out_h, row // (out_w * out_h)
        ch, tj, ti = k % channels, (k // channels) % kw, k // (channels * kw)
        r = p * sh + ti * dh - top
        c = q * sw + tj * dw - left
        if 0 <= r < x.shape[1] and 0 <= c < x.shape[2]:
            cols[row, k] = x[n, r, c, ch]
        else:
            cols[row, k] = 0


@cuda.jit
def _col2im(grad_cols, kh, kw, sh, sw, top, left, dh, dw, out_h, out_w, zero, grad_x):
    # Thread i: element (n, r, c, ch) of grad_x, the sum over the taps (ti, tj) whose
    # output position (p, q) reads it: r + top - ti*dh = p*sh with 0 <= p < out_h (and
    # the same for the columns).
    i = cuda.grid(1)
    if i < grad_x.size:
        n, r, c, ch = _element(i, grad_x.shape)
        channels = grad_x.shape[3]
        total = zero
        for ti in range(kh):
            row_offset = r + top - ti * dh
            if row_offset < 0 or row_offset % sh != 0 or row_offset // sh >= out_h:
                continue
            p = row_offset // sh
            for tj in range(kw):
                col_offset = c + left - tj * dw
                if col_offset < 0 or col_offset % sw != 0 or col_offset // sw >= out_w:
                    continue
                q = col_offset // sw
                total += grad_cols[(n * out_h + p) * out_w + q, (ti * kw + tj) * channels + ch]
        grad_x[n, r, c, ch] = total


def _geometry(image_shape, kernel_shape, stride, padding, dilation):
    """The kernels' scalar arguments (kh, kw, sh, sw, top, left, dh, dw, out_h, out_w)."""
    out_h, out_w = (output_size(image_shape[1 + a], kernel_shape[a], stride[a], dilation[a], *padding[a])
                    for a in range(2))
    (top, _), (left, _) = padding
    return (kernel_shape[0], kernel_shape[1], stride[0], stride[1], top, left, dilation[0], dilation[1], out_h, out_w)


def _columns(x, kernel_shape, geometry):
    """im2col(x): (batch*out_h*out_w, kh*kw*c_in)."""
    xp = get_array_module(x)
    out_h, out_w = geometry[-2:]
    cols = xp.empty((x.shape[0] * out_h * out_w, kernel_shape[0] * kernel_shape[1] * x.shape[3]), dtype=x.dtype)
    launch(_im2col, cols.size, xp.ascontiguousarray(x), *geometry, cols)
    return cols


def _add_back(grad_cols, image_shape, geometry):
    """col2im(grad_cols): d x, (batch, height, width, c_in)."""
    xp = get_array_module(grad_cols)
    grad_x = xp.empty(image_shape, dtype=grad_cols.dtype)
    launch(_col2im, grad_x.size, xp.ascontiguousarray(grad_cols), *geometry, grad_cols.dtype.type(0), grad_x)
    return grad_x


def conv2d_forward(x, kernel, stride, padding, dilation):
    """y = im2col(x) @ kernel.reshape(kh*kw*c_in, c_out) -> (batch, out_h, out_w, c_out)."""
    geometry = _geometry(x.shape, kernel.shape, stride, padding, dilation)
    y = _columns(x, kernel.shape, geometry) @ kernel.reshape(-1, kernel.shape[3])
    return y.reshape(x.shape[0], geometry[-2], geometry[-1], kernel.shape[3])


def conv2d_backward(grad, x, kernel, stride, padding, dilation):
    """d kernel = im2col(x)^T @ grad; d x = col2im(grad @ kernel^T). Returns (grad_x, grad_kernel)."""
    xp = get_array_module(grad)
    geometry = _geometry(x.shape, kernel.shape, stride, padding, dilation)
    cols = _columns(x, kernel.shape, geometry)
    grad_rows = xp.ascontiguousarray(grad).reshape(-1, kernel.shape[3])
    grad_kernel = (cols.T @ grad_rows).reshape(kernel.shape)
    del cols  # the biggest buffer here: free it before the next one is made
    grad_cols = grad_rows @ kernel.reshape(-1, kernel.shape[3]).T
    return _add_back(grad_cols, x.shape, geometry), grad_kernel


# ------------------------------------------------------- fused 1D convolution branch
POOL_SUM, POOL_MAX, POOL_AVERAGE = 0, 1, 2
_POOL_CODES = {"sum": POOL_SUM, "max": POOL_MAX, "average": POOL_AVERAGE}


@cuda.jit(device=True)
def _elu(z, alpha):
    if z > 0:
        return z
    return alpha * math.expm1(z)


@cuda.jit(device=True)
def _elu_slope_from_output(e, alpha):
    """elu'(z) from e = elu(z): 1 where e > 0, e + alpha (= alpha e^z) elsewhere."""
    if e > 0:
        return 1.0
    return e + alpha


@cuda.jit
def _bias_elu_pool(pre, bias, alpha, scale, mode, window, save, zero, y, argmax, slope):
    # Thread i: output (n, w, f), over the steps t of window w of z = pre + bias.
    i = cuda.grid(1)
    if i < y.size:
        count, filters = y.shape[1], y.shape[2]
        f, w, n = i % filters, (i // filters) % count, i // (filters * count)
        steps = pre.shape[0] // y.shape[0]
        first = n * steps + w * window  # row of pre at the window's first step
        if mode == POOL_MAX:
            # ELU is increasing, so the maximum of elu(z) is elu of the maximum z; the
            # first maximum wins, as argmax in the reference.
            best = pre[first, f] + bias[f]
            where = 0
            for s in range(1, window):
                z = pre[first + s, f] + bias[f]
                if z > best:
                    best = z
                    where = s
            y[n, w, f] = _elu(best, alpha)
            if save:
                argmax[n, w, f] = w * window + where
        else:
            total = zero
            for s in range(window):
                e = _elu(pre[first + s, f] + bias[f], alpha)
                total += e
                if save:
                    slope[n, w * window + s, f] = _elu_slope_from_output(e, alpha)
            y[n, w, f] = total * scale


@cuda.jit
def _grad_pre_activation(grad, y, saved, alpha, scale, mode, window, zero, grad_z):
    # Thread i: d z (n, t, f) = d y[n, w, f] * p * elu'(z), w = t // window: p = 1 at the
    # window's maximum (max; 0 elsewhere), else the pool's scale (1, or 1/window).
    i = cuda.grid(1)
    if i < grad_z.size:
        steps, filters = grad_z.shape[1], grad_z.shape[2]
        f, t, n = i % filters, (i // filters) % steps, i // (filters * steps)
        w = t // window
        if w >= grad.shape[1]:  # past the last complete window: no gradient
            grad_z[n, t, f] = zero
        elif mode == POOL_MAX:
            if saved[n, w, f] == t:
                grad_z[n, t, f] = grad[n, w, f] * _elu_slope_from_output(y[n, w, f], alpha)
            else:
                grad_z[n, t, f] = zero
        else:
            grad_z[n, t, f] = grad[n, w, f] * scale * saved[n, t, f]


def _branch_geometry(x, kernel):
    """The 1D 'same' convolution as conv2d geometry on an image of height 1."""
    before, after = same_padding_1d(kernel.shape[0])
    image_shape = (x.shape[0], 1, x.shape[1], x.shape[2])
    return image_shape, _geometry(image_shape, (1,) + kernel.shape, (1, 1), ((0, 0), (before, after)), (1, 1))


def conv1d_elu_pool_forward(x, kernel, bias, alpha, pooling, window, save):
    """The reference's conv1d_elu_pool_forward: im2col and one product for z - bias,
    then one kernel for the bias, the ELU and the pooling (see the module docstring)."""
    xp = get_array_module(x)
    batch, steps, _ = x.shape
    filters = kernel.shape[2]
    image_shape, geometry = _branch_geometry(x, kernel)
    pre = _columns(x.reshape(image_shape), (1,) + kernel.shape, geometry) @ kernel.reshape(-1, filters)
    mode = _POOL_CODES[pooling]
    y = xp.empty((batch, steps // window, filters), dtype=x.dtype)
    keep_maxima, keep_slope = save and mode == POOL_MAX, save and mode != POOL_MAX
    # What is not kept is never written: a one-element stand-in keeps the kernel's types.
    argmax = xp.empty(y.shape if keep_maxima else (1, 1, 1), dtype=xp.int32)
    slope = xp.empty((batch, steps, filters) if keep_slope else (1, 1, 1), dtype=x.dtype)
    if keep_slope:
        slope[:, y.shape[1] * window:] = 0  # past the last complete window: no gradient
    scale = x.dtype.type(1.0 / window if pooling == "average" else 1.0)
    launch(_bias_elu_pool, y.size, xp.ascontiguousarray(pre), xp.ascontiguousarray(bias, dtype=x.dtype),
           x.dtype.type(alpha), scale, mode, window, bool(save), x.dtype.type(0), y, argmax, slope)
    return y, (argmax if keep_maxima else slope if keep_slope else None)


def conv1d_elu_pool_backward(grad, x, kernel, alpha, pooling, window, y, saved):
    """Gradients of conv1d_elu_pool_forward from what it saved: d z by one kernel, then
    d bias = sum d z, d kernel = im2col(x)^T @ d z and d x = col2im(d z @ kernel^T).
    Returns (grad_x, grad_kernel, grad_bias)."""
    xp = get_array_module(grad)
    batch, steps, _ = x.shape
    filters = kernel.shape[2]
    mode = _POOL_CODES[pooling]
    grad_z = xp.empty((batch, steps, filters), dtype=x.dtype)
    scale = x.dtype.type(1.0 / window if pooling == "average" else 1.0)
    launch(_grad_pre_activation, grad_z.size, xp.ascontiguousarray(grad), xp.ascontiguousarray(y),
           xp.ascontiguousarray(saved), x.dtype.type(alpha), scale, mode, window, x.dtype.type(0), grad_z)
    image_shape, geometry = _branch_geometry(x, kernel)
    rows = grad_z.reshape(-1, filters)
    cols = _columns(x.reshape(image_shape), (1,) + kernel.shape, geometry)
    grad_kernel = (cols.T @ rows).reshape(kernel.shape)
    del cols
    grad_x = _add_back(rows @ kernel.reshape(-1, filters).T, image_shape, geometry)
    return grad_x.reshape(x.shape), grad_kernel, rows.sum(axis=0)
