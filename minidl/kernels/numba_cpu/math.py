"""Matrix products split across Numba's threads, each part one single-threaded BLAS call.

The BLAS libraries run on one thread when the numba kernels are in force (see
kernels/parallelism.py), so a large product is parallel only if it is split here, along
the axis that gives each thread its own share of the memory it reads:

- by rows of the output when there are enough of them (the forward product x @ W and
  the input gradient g @ W^T at batch 64 and up): out[rows_p] = a[rows_p] @ b;
- by the inner axis when the rows are few and `b`'s rows are contiguous (x @ W at
  batch 1-63, where reading W is the cost, and a weight gradient x^T @ g whose inner
  axis, the batch, is the longest): part p computes a[:, inner_p] @ b[inner_p] into its own
  slab, and the slabs are summed in part order, so the result does not depend on how
  the threads were scheduled;
- by columns of the output when the rows are few and `b` is a transposed matrix (the
  input gradient g @ W^T at small batch): the transposed product out^T = b^T @ a^T by
  rows, then one copy back.

A product too small to pay for a parallel region (threads.PRODUCT_GRAIN multiply-adds
a part) is one BLAS call on the calling thread; slices a part reads that are not
contiguous Numba copies before its BLAS call (small ones, by the choice of axis).
"""
import warnings

import numpy as np
from numba import njit, prange
from numba.core.errors import NumbaPerformanceWarning

from minidl.kernels.numba_cpu import threads
from minidl.kernels.numba_cpu.threads import bounds

#: Fewest output rows (inner-axis entries) one part of a split product gets: thinner
#: slices leave BLAS too little to block on.
MIN_ROWS = 32
MIN_INNER = 128


@njit(parallel=True, cache=True)
def _by_rows(a, b, out, parts):
    for part in prange(parts):
        start, stop = bounds(part, parts, a.shape[0])
        np.dot(a[start:stop], b, out[start:stop])


# Numba notes at compile time that np.dot copies a non-contiguous slice first; here it is
# the point (see the module docstring).
warnings.filterwarnings("ignore", message=r"np\.vdot\(\) is faster on contiguous arrays",
                        category=NumbaPerformanceWarning)


@njit(parallel=True, cache=True)
def _by_inner(a, b, slabs, parts):
    for part in prange(parts):
        start, stop = bounds(part, parts, a.shape[1])
        np.dot(a[:, start:stop], b[start:stop], slabs[part])


@njit(parallel=True, cache=True)
def _sum_slabs(slabs, out, parts):
    flat_slabs = slabs.reshape(slabs.shape[0], -1)
    flat = out.reshape(-1)
    for part in prange(parts):
        start, stop = bounds(part, parts, flat.size)
        for i in range(start, stop):
            total = flat_slabs[0, i]
            for s in range(1, flat_slabs.shape[0]):
                total += flat_slabs[s, i]
            flat[i] = total


def _splittable(a, b):
    return (a.ndim == 2 and b.ndim == 2 and a.dtype == b.dtype and a.dtype.kind == "f"
            and (a.flags.c_contiguous or a.flags.f_contiguous) and (b.flags.c_contiguous or b.flags.f_contiguous))


def _rows(a, b, parts):
    out = np.empty((a.shape[0], b.shape[1]), dtype=a.dtype)
    _by_rows(a, b, out, parts)
    return out


def _inner(a, b, parts):
    slabs = np.empty((parts, a.shape[0], b.shape[1]), dtype=a.dtype)
    _by_inner(a, b, slabs, parts)
    out = np.empty((a.shape[0], b.shape[1]), dtype=a.dtype)
    _sum_slabs(slabs, out, threads.parts(out.size, most=parts))
    return out


def matmul(a, b):
    """a (m, k) @ b (k, n) -> (m, n), split across threads when large enough."""
    if not _splittable(a, b):
        return a @ b
    (m, k), n = a.shape, b.shape[1]
    work = m * k * n

    def parts(axis, fewest):
        return threads.parts(work, threads.PRODUCT_GRAIN, most=axis // fewest)

    # A weight gradient over a long batch axis reads far more than it writes: split that axis.
    tall_inner = a.flags.f_contiguous and not a.flags.c_contiguous and b.flags.c_contiguous and k >= m
    if not tall_inner and parts(m, MIN_ROWS) > 1:
        return _rows(a, b, parts(m, MIN_ROWS))
    if b.flags.c_contiguous and parts(k, MIN_INNER) > 1:
        return _inner(a, b, parts(k, MIN_INNER))
    if b.flags.f_contiguous and parts(n, MIN_ROWS) > 1:
        return np.ascontiguousarray(_rows(b.T, a.T, parts(n, MIN_ROWS)).T)
    if work >= threads.PRODUCT_GRAIN:
        return _rows(a, b, 1)  # BLAS through Numba: NumPy takes a slow path for some layouts
    return a @ b
