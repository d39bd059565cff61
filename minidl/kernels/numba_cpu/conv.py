"""Numba twins of kernels/reference/conv.py: the same names, signatures and layout.

im2col: one parallel Numba pass copies every output position's receptive field into a
row of `cols` (batch*out_h*out_w, kh*kw*c_in), writing zeros where a tap falls in the
padding (so the padded input is never built); then the whole convolution is a single
BLAS product cols @ kernel.reshape(kh*kw*c_in, c_out). The backward reuses the same
rows: d kernel = cols^T @ grad and d cols = grad @ kernel^T, which col2im adds back onto
the input positions. One large product keeps BLAS busier than the reference's kh*kw
smaller ones, and im2col reads the input once instead of once per tap.
"""
import numpy as np
from numba import njit, prange

from minidl.kernels.numba_cpu import threads, vector_math
from minidl.kernels.numba_cpu.threads import bounds
from minidl.kernels.reference.conv import output_size, same_padding_1d


@njit(parallel=True, cache=True)
def _im2col(x, kh, kw, sh, sw, top, left, dh, dw, out_h, out_w, cols):
    batch, height, width, channels = x.shape
    for n in prange(batch):
        for p in range(out_h):
            for q in range(out_w):
                row = (n * out_h + p) * out_w + q
                for i in range(kh):
                    r = p * sh + i * dh - top
                    for j in range(kw):
                        c = q * sw + j * dw - left
                        start = (i * kw + j) * channels
                        inside = 0 <= r < height and 0 <= c < width
                        for ch in range(channels):
                            cols[row, start + ch] = x[n, r, c, ch] if inside else 0.0


@njit(parallel=True, cache=True)
def _col2im(grad_cols, kh, kw, sh, sw, top, left, dh, dw, out_h, out_w, grad_x):
    # Parallel over the batch: two samples never write the same element of grad_x.
    batch, height, width, channels = grad_x.shape
    for n in prange(batch):
        for p in range(out_h):
            for q in range(out_w):
                row = (n * out_h + p) * out_w + q
                for i in range(kh):
                    r = p * sh + i * dh - top
                    if r < 0 or r >= height:
                        continue
                    for j in range(kw):
                        c = q * sw + j * dw - left
                        if c < 0 or c >= width:
                            continue
                        start = (i * kw + j) * channels
                        for ch in range(channels):
                            grad_x[n, r, c, ch] += grad_cols[row, start + ch]


def _cols(x, kernel, stride, padding, dilation):
    kh, kw = kernel.shape[0], kernel.shape[1]
    out_h = output_size(x.shape[1], kh, stride[0], dilation[0], *padding[0])
    out_w = output_size(x.shape[2], kw, stride[1], dilation[1], *padding[1])
    cols = np.empty((x.shape[0] * out_h * out_w, kh * kw * x.shape[3]), dtype=x.dtype)
    _im2col(np.ascontiguousarray(x), kh, kw, stride[0], stride[1], padding[0][0], padding[1][0],
            dilation[0], dilation[1], out_h, out_w, cols)
    return cols, out_h, out_w


def conv2d_forward(x, kernel, stride, padding, dilation):
    """y = im2col(x) @ kernel.reshape(-1, c_out) -> (batch, out_h, out_w, c_out)."""
    cols, out_h, out_w = _cols(x, kernel, stride, padding, dilation)
    c_out = kernel.shape[3]
    y = np.dot(cols, np.ascontiguousarray(kernel).reshape(-1, c_out))
    return y.reshape(x.shape[0], out_h, out_w, c_out)


def conv2d_backward(grad, x, kernel, stride, padding, dilation):
    """d kernel = im2col(x)^T @ grad; d x = col2im(grad @ kernel^T). Returns (grad_x, grad_kernel)."""
    cols, out_h, out_w = _cols(x, kernel, stride, padding, dilation)
    c_out = kernel.shape[3]
    grad_rows = np.ascontiguousarray(grad).reshape(-1, c_out)
    kernel_rows = np.ascontiguousarray(kernel).reshape(-1, c_out)
    # (grad^T @ cols)^T, not cols^T @ grad: the same product, but OpenBLAS runs the first
    # form 3-15x faster here (inner dimension batch*positions, 19200 for a URL batch).
    grad_kernel = np.dot(grad_rows.T, cols).T.reshape(kernel.shape)
    grad_cols = np.dot(grad_rows, kernel_rows.T)
    grad_x = np.zeros(x.shape, dtype=x.dtype)
    _col2im(grad_cols, kernel.shape[0], kernel.shape[1], stride[0], stride[1], padding[0][0], padding[1][0],
            dilation[0], dilation[1], out_h, out_w, grad_x)
    return grad_x, grad_kernel


# ------------------------------------------------------- fused 1D convolution branch
# The URL models' branch, conv1d('same') + bias + ELU + a reduction over windows of
# time, in one pass per block of samples: the block's im2col rows and pre-activations
# live in two buffers sized to stay in cache, and neither the pre-activation nor the
# ELU's output is written. For backward the forward keeps the step of each maximum
# (max), or elu'(z) per step and filter (sum, average: one array where the unfused
# layers keep two, and what spares backward a product to compute z again).
POOL_SUM, POOL_MAX, POOL_AVERAGE = 0, 1, 2
_POOL_CODES = {"sum": POOL_SUM, "max": POOL_MAX, "average": POOL_AVERAGE}

#: Rows (samples x steps) of one block: 512 rows of 160 im2col and 256 pre-activation
#: floats are 0.8 MB, within a core's L2 here.
BLOCK_ROWS = 512

#: From this window on, the maximum's backward walks the maxima alone (batch x windows x
#: filters of them) instead of two block products over every step: a window of w steps
#: has 1/w of the steps as maxima, and the walk runs at about a quarter of BLAS' rate.
SPARSE_MAX_WINDOW = 8


@njit(cache=True, error_model="numpy", inline="always")
def _branch_im2col(x, first, count, size, before, cols):
    """cols[s*T + t, j*D:(j+1)*D] = x[first + s, t + j - before] (zeros in the padding)."""
    steps, channels = x.shape[1], x.shape[2]
    for s in range(count):
        for t in range(steps):
            row = cols[s * steps + t]
            for j in range(size):
                source = t + j - before
                segment = row[j * channels:(j + 1) * channels]
                if 0 <= source < steps:
                    values = x[first + s, source]
                    for d in range(channels):
                        segment[d] = values[d]
                else:
                    for d in range(channels):
                        segment[d] = 0


@njit(cache=True, error_model="numpy", inline="always")
def _branch_col2im(grad_cols, first, count, size, before, grad_x):
    """grad_x[first + s, t + j - before] += grad_cols[s*T + t, j*D:(j+1)*D]."""
    steps, channels = grad_x.shape[1], grad_x.shape[2]
    for s in range(count):
        for t in range(steps):
            row = grad_cols[s * steps + t]
            for j in range(size):
                source = t + j - before
                if 0 <= source < steps:
                    segment = row[j * channels:(j + 1) * channels]
                    target = grad_x[first + s, source]
                    for d in range(channels):
                        target[d] += segment[d]


@njit(cache=True, error_model="numpy", inline="always")
def _elu_slope_from_output(y, alpha):
    """elu'(z) from y = elu(z): 1 where y > 0, y + alpha (= alpha e^z) elsewhere."""
    zero, one = vector_math.plain_constants(y)[:2]
    return one if y > zero else y + alpha


@njit(parallel=True, cache=True, error_model="numpy")
def _branch_forward(x, weights, bias, alpha, scale, mode, window, size, before, batch_parts, filter_parts, block,
                    save, y, argmax, slope):
    # Part p owns a range of samples and a range of filters: the filters are split only
    # when the batch has fewer samples than the work has threads (batch 1 at inference).
    batch, steps, _ = x.shape
    count = y.shape[1]
    zero = vector_math.plain_constants(alpha)[0]
    for part in prange(batch_parts * filter_parts):
        start, stop = bounds(part // filter_parts, batch_parts, batch)
        low, high = bounds(part % filter_parts, filter_parts, weights.shape[1])
        filters = high - low
        part_weights = np.ascontiguousarray(weights[:, low:high])
        part_bias = bias[low:high]
        cols = np.empty((block * steps, weights.shape[0]), dtype=x.dtype)
        pre = np.empty((block * steps, filters), dtype=x.dtype)
        for first in range(start, stop, block):
            samples = min(block, stop - first)
            rows = samples * steps
            _branch_im2col(x, first, samples, size, before, cols)
            np.dot(cols[:rows], part_weights, pre[:rows])
            for s in range(samples):
                for w in range(count):
                    out = y[first + s, w, low:high]
                    if mode == POOL_MAX:
                        where = argmax[first + s, w, low:high]
                        best = pre[s * steps + w * window]
                        for f in range(filters):
                            out[f] = best[f]
                            where[f] = w * window
                        for t in range(w * window + 1, (w + 1) * window):
                            z_row = pre[s * steps + t]
                            for f in range(filters):
                                better = z_row[f] > out[f]
                                out[f] = z_row[f] if better else out[f]
                                where[f] = t if better else where[f]
                        # ELU is increasing, so the maximum of elu(z) is elu of the maximum z.
                        for f in range(filters):
                            z = out[f] + part_bias[f]
                            out[f] = z if z > zero else alpha * vector_math.expm1_nonpositive(z)
                    else:
                        for f in range(filters):
                            out[f] = zero
                        for t in range(w * window, (w + 1) * window):
                            e_row = pre[s * steps + t]  # z, then elu(z) in place
                            for f in range(filters):
                                z = e_row[f] + part_bias[f]
                                e_row[f] = z if z > zero else alpha * vector_math.expm1_nonpositive(z)
                                out[f] += e_row[f]
                            if save:
                                slope_row = slope[first + s, t, low:high]
                                for f in range(filters):
                                    slope_row[f] = _elu_slope_from_output(e_row[f], alpha)
                        if mode == POOL_AVERAGE:
                            for f in range(filters):
                                out[f] *= scale


@njit(parallel=True, cache=True, error_model="numpy")
def _branch_backward_dense(grad, x, weights_t, alpha, scale, mode, window, size, before, y, argmax, slope,
                           parts, block, grad_x, grad_weights, grad_bias):
    # Per block: d z (sum and average: d y times the saved slope; max: the gradient
    # placed at each maximum), then d weights += cols^T d z and d cols = d z @ weights^T,
    # added back onto x. Each part sums into its own slabs, which the caller adds in
    # part order.
    batch, steps, _ = x.shape
    filters, count = weights_t.shape[0], grad.shape[1]
    width = weights_t.shape[1]
    zero = vector_math.plain_constants(alpha)[0]
    for part in prange(parts):
        start, stop = bounds(part, parts, batch)
        cols = np.empty((block * steps, width), dtype=x.dtype)
        d_z = np.empty((block * steps, filters), dtype=x.dtype)
        d_cols = np.empty_like(cols)
        product = np.empty((width, filters), dtype=x.dtype)
        slab, bias_slab = grad_weights[part], grad_bias[part]
        slab[:] = 0
        bias_slab[:] = 0
        for first in range(start, stop, block):
            samples = min(block, stop - first)
            rows = samples * steps
            _branch_im2col(x, first, samples, size, before, cols)
            if mode == POOL_MAX:
                d_z[:rows] = 0
                for s in range(samples):
                    for w in range(count):
                        g_row, y_row, where = grad[first + s, w], y[first + s, w], argmax[first + s, w]
                        for f in range(filters):
                            d_z[s * steps + where[f], f] = g_row[f] * _elu_slope_from_output(y_row[f], alpha)
            else:
                for s in range(samples):
                    for t in range(steps):
                        d_row = d_z[s * steps + t]
                        if t < count * window:
                            g_row, slope_row = grad[first + s, t // window], slope[first + s, t]
                            for f in range(filters):
                                d_row[f] = g_row[f] * scale * slope_row[f]
                        else:  # past the last complete window: no gradient
                            for f in range(filters):
                                d_row[f] = zero
            for r in range(rows):
                z_row = d_z[r]
                for f in range(filters):
                    bias_slab[f] += z_row[f]
            np.dot(cols[:rows].T, d_z[:rows], product)
            for i in range(product.shape[0]):
                slab_row, product_row = slab[i], product[i]
                for f in range(filters):
                    slab_row[f] += product_row[f]
            np.dot(d_z[:rows], weights_t, d_cols[:rows])
            _branch_col2im(d_cols, first, samples, size, before, grad_x)


@njit(parallel=True, cache=True, error_model="numpy")
def _branch_backward_sparse_max(grad, x, kernel_t, alpha, size, before, y, argmax, parts,
                                grad_x, grad_kernel_t, grad_bias):
    # Only the maxima carry gradient: for each (sample, window, filter), d z at its
    # step t* adds d z * x[t* + j - before] to d kernel[j, :, f] and d z * kernel[j, :, f]
    # to d x[t* + j - before]. kernel_t and grad_kernel_t are (filters, k, c_in).
    batch, steps, channels = x.shape
    count, filters = grad.shape[1], grad.shape[2]
    for part in prange(parts):
        start, stop = bounds(part, parts, batch)
        slab, bias_slab = grad_kernel_t[part], grad_bias[part]
        slab[:] = 0
        bias_slab[:] = 0
        for n in range(start, stop):
            for w in range(count):
                g_row, y_row, where = grad[n, w], y[n, w], argmax[n, w]
                for f in range(filters):
                    d_z = g_row[f] * _elu_slope_from_output(y_row[f], alpha)
                    bias_slab[f] += d_z
                    for j in range(size):
                        source = where[f] + j - before
                        if 0 <= source < steps:
                            x_row, k_row = x[n, source], kernel_t[f, j]
                            g_k, g_x = slab[f, j], grad_x[n, source]
                            for d in range(channels):
                                g_k[d] += d_z * x_row[d]
                                g_x[d] += d_z * k_row[d]


def _branch_geometry(x, kernel, pooling, window):
    """(k, padding before, samples per block, the pool's scale in x's dtype)."""
    size = kernel.shape[0]
    block = max(1, min(x.shape[0], BLOCK_ROWS // max(1, x.shape[1])))
    scale = x.dtype.type(1.0 / window if pooling == "average" else 1.0)
    return size, same_padding_1d(size)[0], block, scale


def _branch_parts(x, kernel):
    # Work: the block products, batch * time * (k * c_in) * filters multiply-adds.
    batch, steps, channels = x.shape
    work = batch * steps * kernel.shape[0] * channels * kernel.shape[2]
    return threads.parts(work, threads.PRODUCT_GRAIN, most=batch)


#: Fewest filters a part of the forward gets when the filters are split.
MIN_FILTERS = 32


def _forward_parts(x, kernel):
    """(batch parts, filter parts) of the forward: the batch first, and the threads it
    leaves over split the filters (at least MIN_FILTERS each)."""
    batch, steps, channels = x.shape
    filters = kernel.shape[2]
    work = batch * steps * kernel.shape[0] * channels * filters
    total = threads.parts(work, threads.PRODUCT_GRAIN)
    batch_parts = min(total, batch)
    return batch_parts, max(1, min(total // batch_parts, filters // MIN_FILTERS))


def conv1d_elu_pool_forward(x, kernel, bias, alpha, pooling, window, save):
    """The reference's conv1d_elu_pool_forward, block by block across threads (see above)."""
    x, bias = np.ascontiguousarray(x), np.ascontiguousarray(bias)
    batch, steps, _ = x.shape
    size, before, block, scale = _branch_geometry(x, kernel, pooling, window)
    mode = _POOL_CODES[pooling]
    y = np.empty((batch, steps // window, kernel.shape[2]), dtype=x.dtype)
    keep_maxima, keep_slope = save and mode == POOL_MAX, save and mode != POOL_MAX
    # Without their use the loop writes neither: one-element placeholders keep the types.
    argmax = np.empty(y.shape if mode == POOL_MAX else (1, 1, 1), dtype=np.int32)
    slope = np.empty((batch, steps, kernel.shape[2]) if keep_slope else (1, 1, 1), dtype=x.dtype)
    if keep_slope:
        slope[:, y.shape[1] * window:] = 0  # past the last complete window: no gradient
    weights = np.ascontiguousarray(kernel).reshape(-1, kernel.shape[2])
    _branch_forward(x, weights, bias, x.dtype.type(alpha), scale, mode, window, size, before,
                    *_forward_parts(x, kernel), block, keep_slope, y, argmax, slope)
    return y, (argmax if keep_maxima else slope if keep_slope else None)


def conv1d_elu_pool_backward(grad, x, kernel, alpha, pooling, window, y, saved):
    """The reference's conv1d_elu_pool_backward; the maximum over long windows walks the
    maxima alone (SPARSE_MAX_WINDOW)."""
    grad, x, saved = np.ascontiguousarray(grad), np.ascontiguousarray(x), np.ascontiguousarray(saved)
    size, before, block, scale = _branch_geometry(x, kernel, pooling, window)
    parts = _branch_parts(x, kernel)
    alpha = x.dtype.type(alpha)
    grad_x = np.zeros(x.shape, dtype=x.dtype)
    grad_bias = np.empty((parts, kernel.shape[2]), dtype=x.dtype)
    mode = _POOL_CODES[pooling]
    if mode == POOL_MAX and window >= SPARSE_MAX_WINDOW:
        kernel_t = np.ascontiguousarray(kernel.transpose(2, 0, 1))
        grad_kernel_t = np.empty((parts,) + kernel_t.shape, dtype=x.dtype)
        _branch_backward_sparse_max(grad, x, kernel_t, alpha, size, before, np.ascontiguousarray(y),
                                    saved, parts, grad_x, grad_kernel_t, grad_bias)
        grad_kernel = grad_kernel_t.sum(axis=0).transpose(1, 2, 0)
    else:
        weights_t = np.ascontiguousarray(np.ascontiguousarray(kernel).reshape(-1, kernel.shape[2]).T)
        grad_weights = np.empty((parts,) + weights_t.shape[::-1], dtype=x.dtype)
        maxima = mode == POOL_MAX
        _branch_backward_dense(grad, x, weights_t, alpha, scale, mode, window, size, before,
                               np.ascontiguousarray(y) if maxima else np.zeros((1, 1, 1), x.dtype),
                               saved if maxima else np.zeros((1, 1, 1), np.int32),
                               np.zeros((1, 1, 1), x.dtype) if maxima else saved,
                               parts, block, grad_x, grad_weights, grad_bias)
        grad_kernel = grad_weights.sum(axis=0).reshape(kernel.shape)
    return grad_x, np.ascontiguousarray(grad_kernel), grad_bias.sum(axis=0)
