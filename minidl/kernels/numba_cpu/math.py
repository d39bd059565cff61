"""Matrix products split across Numba's threads, each part one single-threaded BLAS call.

The BLAS libraries run on one thread when the numba kernels are in force (see
kernels/parallelism.py), so a large product is parallel only if it is split here:

- by rows of the output when `a`'s rows are contiguous (the forward product x @ W and
  the input gradient g @ W^T): part p computes out[rows_p] = a[rows_p] @ b;
- by the inner axis when `a` is a transposed C array (the weight gradient x^T @ g,
  whose inner axis is the batch): part p computes a[:, inner_p] @ b[inner_p] into its
  own slab, and the slabs are summed, in a fixed order, so the result does not depend
  on how the threads were scheduled.

A product too small to pay for a parallel region (threads.PRODUCT_GRAIN multiply-adds
a part) is one BLAS call on the calling thread.
"""
import numpy as np
from numba import njit, prange

from minidl.kernels.numba_cpu import threads
from minidl.kernels.numba_cpu.threads import bounds

#: Fewest output rows (inner-axis entries) one part of a split product gets: thinner
#: slices leave BLAS too little to block on.
MIN_ROWS = 16
MIN_INNER = 128


@njit(parallel=True, cache=True)
def _by_rows(a, b, out, parts):
    for part in prange(parts):
        start, stop = bounds(part, parts, a.shape[0])
        np.dot(a[start:stop], b, out[start:stop])


@njit(parallel=True, cache=True)
def _by_inner(a_t, b, slabs, parts):
    # a_t is (k, m) C-contiguous, the transpose of the left operand: its row slices are
    # the left operand's column slices, contiguous.
    for part in prange(parts):
        start, stop = bounds(part, parts, a_t.shape[0])
        np.dot(a_t[start:stop].T, b[start:stop], slabs[part])


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
            and (b.flags.c_contiguous or b.flags.f_contiguous))


def matmul(a, b):
    """a (m, k) @ b (k, n) -> (m, n), split across threads when large enough."""
    if not _splittable(a, b):
        return a @ b
    (m, k), n = a.shape, b.shape[1]
    work = m * k * n
    if a.flags.c_contiguous:
        parts = threads.parts(work, threads.PRODUCT_GRAIN, most=m // MIN_ROWS)
        if parts > 1:
            out = np.empty((m, n), dtype=a.dtype)
            _by_rows(a, b, out, parts)
            return out
    elif a.flags.f_contiguous and b.flags.c_contiguous:
        parts = threads.parts(work, threads.PRODUCT_GRAIN, most=k // MIN_INNER)
        if parts > 1:
            slabs = np.empty((parts, m, n), dtype=a.dtype)
            _by_inner(a.T, b, slabs, parts)
            out = np.empty((m, n), dtype=a.dtype)
            _sum_slabs(slabs, out, threads.parts(m * n, most=parts))
            return out
    return a @ b
