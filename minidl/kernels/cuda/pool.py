"""CuPy twins of kernels/reference/pool.py: max and sum pooling on channels-last arrays
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
import cupy

from minidl.kernels.reference.conv import output_size

# The geometry every kernel below takes after its arrays, in this order.
_GEOMETRY = (
    "int64 height, int64 width, int64 channels, int64 out_h, int64 out_w, "
    "int64 ph, int64 pw, int64 sh, int64 sw, int64 top, int64 left"
)

# Index helpers, defined per kernel from the thread's element i: an output element
# (n, p, q, ch) for the forward kernels, an input element (n, r, c, ch) going back.
_PREAMBLE = """
#define MINIDL_OUTPUT_ELEMENT \\
    const long long ch = i % channels, q = (i / channels) % out_w; \\
    const long long p = (i / (channels * out_w)) % out_h, n = i / (channels * out_w * out_h);
#define MINIDL_INPUT_ELEMENT \\
    const long long ch = i % channels, c = (i / channels) % width; \\
    const long long r = (i / (channels * width)) % height, n = i / (channels * width * height);
#define MINIDL_FOR_TAPS_OF_OUTPUT \\
    for (long long ti = 0; ti < ph; ++ti) \\
        for (long long tj = 0; tj < pw; ++tj) { \\
            const long long r = p * sh + ti - top, c = q * sw + tj - left; \\
            if (r < 0 || r >= height || c < 0 || c >= width) continue;
#define MINIDL_FOR_WINDOWS_OF_INPUT \\
    for (long long ti = 0; ti < ph; ++ti) \\
        for (long long tj = 0; tj < pw; ++tj) { \\
            const long long row_offset = r + top - ti, col_offset = c + left - tj; \\
            if (row_offset < 0 || row_offset % sh != 0 || row_offset / sh >= out_h) continue; \\
            if (col_offset < 0 || col_offset % sw != 0 || col_offset / sw >= out_w) continue; \\
            const long long out_index = ((n * out_h + row_offset / sh) * out_w + col_offset / sw) * channels + ch;
"""

_max_pool = cupy.ElementwiseKernel(
    "raw T x, " + _GEOMETRY, "T y, int64 argmax",
    """
    MINIDL_OUTPUT_ELEMENT
    T best = -CUDART_INF;
    long long best_tap = 0;
    MINIDL_FOR_TAPS_OF_OUTPUT
        const T value = x[((n * height + r) * width + c) * channels + ch];
        if (value > best) { best = value; best_tap = ti * pw + tj; }
    }
    y = best;
    argmax = best_tap;
    """,
    "minidl_max_pool",
    preamble="#include <cupy/math_constants.h>\n" + _PREAMBLE,
)

_max_unpool = cupy.ElementwiseKernel(
    "raw T grad, raw int64 argmax, " + _GEOMETRY, "T grad_x",
    """
    MINIDL_INPUT_ELEMENT
    T total = 0;
    MINIDL_FOR_WINDOWS_OF_INPUT
        if (argmax[out_index] == ti * pw + tj) total += grad[out_index];
    }
    grad_x = total;
    """,
    "minidl_max_unpool",
    preamble=_PREAMBLE,
)

_sum_pool = cupy.ElementwiseKernel(
    "raw T x, " + _GEOMETRY, "T y",
    """
    MINIDL_OUTPUT_ELEMENT
    T total = 0;
    MINIDL_FOR_TAPS_OF_OUTPUT
        total += x[((n * height + r) * width + c) * channels + ch];
    }
    y = total;
    """,
    "minidl_sum_pool",
    preamble=_PREAMBLE,
)

_sum_unpool = cupy.ElementwiseKernel(
    "raw T grad, " + _GEOMETRY, "T grad_x",
    """
    MINIDL_INPUT_ELEMENT
    T total = 0;
    MINIDL_FOR_WINDOWS_OF_INPUT
        total += grad[out_index];
    }
    grad_x = total;
    """,
    "minidl_sum_unpool",
    preamble=_PREAMBLE,
)


def _geometry(input_shape, pool, stride, padding):
    """The scalar arguments of the kernels above, and the output shape."""
    batch, height, width, channels = input_shape
    out_h, out_w = (output_size(input_shape[1 + a], pool[a], stride[a], 1, *padding[a]) for a in range(2))
    (top, _), (left, _) = padding
    geometry = (height, width, channels, out_h, out_w, pool[0], pool[1], stride[0], stride[1], top, left)
    return geometry, (batch, out_h, out_w, channels)


def max_pool2d_forward(x, pool, stride, padding):
    """(y, argmax): the max over each window and its tap number i*pw + j (int64)."""
    geometry, out_shape = _geometry(x.shape, pool, stride, padding)
    y = cupy.empty(out_shape, dtype=x.dtype)
    argmax = cupy.empty(out_shape, dtype=cupy.int64)
    return _max_pool(cupy.ascontiguousarray(x), *geometry, y, argmax)


def max_pool2d_backward(grad, argmax, input_shape, pool, stride, padding):
    """d x[p] = the sum of grad over the windows whose argmax is p."""
    geometry, _ = _geometry(input_shape, pool, stride, padding)
    grad_x = cupy.empty(tuple(input_shape), dtype=grad.dtype)
    return _max_unpool(cupy.ascontiguousarray(grad), cupy.ascontiguousarray(argmax), *geometry, grad_x)


def sum_pool2d_forward(x, pool, stride, padding):
    """y = the sum over each window (taps in the padding add nothing)."""
    geometry, out_shape = _geometry(x.shape, pool, stride, padding)
    return _sum_pool(cupy.ascontiguousarray(x), *geometry, cupy.empty(out_shape, dtype=x.dtype))


def sum_pool2d_backward(grad, input_shape, pool, stride, padding):
    """d x[p] = the sum of grad over the windows that contain p."""
    geometry, _ = _geometry(input_shape, pool, stride, padding)
    grad_x = cupy.empty(tuple(input_shape), dtype=grad.dtype)
    return _sum_unpool(cupy.ascontiguousarray(grad), *geometry, grad_x)
