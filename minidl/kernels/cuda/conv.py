"""CuPy twins of kernels/reference/conv.py: 2D convolution on channels-last arrays as
im2col + one cuBLAS product (Chellapilla et al. 2006), instead of the reference's
kh*kw tap products, each of which would copy a strided window on the GPU.

Shapes and geometry as in the reference: x (batch, height, width, c_in), kernel
(kh, kw, c_in, c_out), stride (sh, sw), padding ((top, bottom), (left, right)),
dilation (dh, dw). The column matrix has one row per output position (n, p, q) and one
column per (tap i, tap j, input channel), the C order of `kernel.reshape(-1, c_out)`:

    cols[(n, p, q), (i, j, ch)] = x[n, p*sh + i*dh - top, q*sw + j*dw - left, ch]  (0 outside)
    y = cols @ kernel.reshape(kh*kw*c_in, c_out)

Backward: d kernel = cols^T @ grad and d cols = grad @ kernel^T (cuBLAS), then col2im
gathers, for every input element, the entries of d cols that read it. Gathering (one
thread per input element, taps in order) needs no atomics, so it is deterministic.
The column matrix costs batch*out_h*out_w*kh*kw*c_in elements of memory.
"""
import cupy

from minidl.kernels.reference.conv import output_size

# The geometry every kernel below takes after its arrays, in this order.
_GEOMETRY = (
    "int64 height, int64 width, int64 channels, int64 out_h, int64 out_w, int64 kh, int64 kw, "
    "int64 sh, int64 sw, int64 top, int64 left, int64 dh, int64 dw"
)

# One thread per element of cols (rows = batch*out_h*out_w, columns = kh*kw*channels).
_im2col = cupy.ElementwiseKernel(
    "raw T x, " + _GEOMETRY, "T col",
    """
    const long long taps = kh * kw * channels;
    const long long position = i / taps, k = i % taps;
    const long long q = position % out_w, p = (position / out_w) % out_h, n = position / (out_w * out_h);
    const long long ch = k % channels, tj = (k / channels) % kw, ti = k / (channels * kw);
    const long long r = p * sh + ti * dh - top, c = q * sw + tj * dw - left;
    col = (r >= 0 && r < height && c >= 0 && c < width)
        ? x[((n * height + r) * width + c) * channels + ch] : (T)0;
    """,
    "minidl_conv_im2col",
)

# One thread per element (n, r, c, ch) of grad_x: the sum over the taps (ti, tj) whose
# output position (p, q) reads it, i.e. r + top - ti*dh = p*sh with 0 <= p < out_h.
_col2im = cupy.ElementwiseKernel(
    "raw T grad_cols, " + _GEOMETRY, "T grad_x",
    """
    const long long ch = i % channels, c = (i / channels) % width;
    const long long r = (i / (channels * width)) % height, n = i / (channels * width * height);
    const long long taps = kh * kw * channels;
    T total = 0;
    for (long long ti = 0; ti < kh; ++ti) {
        const long long row_offset = r + top - ti * dh;
        if (row_offset < 0 || row_offset % sh != 0 || row_offset / sh >= out_h) continue;
        const long long p = row_offset / sh;
        for (long long tj = 0; tj < kw; ++tj) {
            const long long col_offset = c + left - tj * dw;
            if (col_offset < 0 || col_offset % sw != 0 || col_offset / sw >= out_w) continue;
            const long long q = col_offset / sw;
            total += grad_cols[((n * out_h + p) * out_w + q) * taps + (ti * kw + tj) * channels + ch];
        }
    }
    grad_x = total;
    """,
    "minidl_conv_col2im",
)


def _geometry(x, kernel, stride, padding, dilation):
    """The scalar arguments of the kernels above, and the output size (out_h, out_w)."""
    out_h, out_w = (
        output_size(x.shape[1 + a], kernel.shape[a], stride[a], dilation[a], *padding[a]) for a in range(2)
    )
    (top, _), (left, _) = padding
    geometry = (x.shape[1], x.shape[2], x.shape[3], out_h, out_w, kernel.shape[0], kernel.shape[1],
                stride[0], stride[1], top, left, dilation[0], dilation[1])
    return geometry, out_h, out_w


def _columns(x, kernel, geometry, out_h, out_w):
    taps = kernel.shape[0] * kernel.shape[1] * kernel.shape[2]
    cols = cupy.empty((x.shape[0] * out_h * out_w, taps), dtype=x.dtype)
    return _im2col(cupy.ascontiguousarray(x), *geometry, cols)


def conv2d_forward(x, kernel, stride, padding, dilation):
    """y = im2col(x) @ kernel.reshape(kh*kw*c_in, c_out) -> (batch, out_h, out_w, c_out)."""
    geometry, out_h, out_w = _geometry(x, kernel, stride, padding, dilation)
    cols = _columns(x, kernel, geometry, out_h, out_w)
    y = cols @ kernel.reshape(-1, kernel.shape[3])
    return y.reshape(x.shape[0], out_h, out_w, kernel.shape[3])


def conv2d_backward(grad, x, kernel, stride, padding, dilation):
    """d kernel = im2col(x)^T @ grad; d x = col2im(grad @ kernel^T). Returns (grad_x, grad_kernel)."""
    geometry, out_h, out_w = _geometry(x, kernel, stride, padding, dilation)
    cols = _columns(x, kernel, geometry, out_h, out_w)
    grad_rows = cupy.ascontiguousarray(grad).reshape(-1, kernel.shape[3])
    kernel_2d = kernel.reshape(-1, kernel.shape[3])
    grad_kernel = (cols.T @ grad_rows).reshape(kernel.shape)
    del cols  # the biggest buffer here: free it before the next one is made
    grad_cols = grad_rows @ kernel_2d.T
    grad_x = _col2im(grad_cols, *geometry, cupy.empty(x.shape, dtype=x.dtype))
    return grad_x, grad_kernel
