"""How many of Numba's threads one kernel call gets: decided here, from the call's work.

Every parallel region costs a wake-up of the pool (about 1.5 microseconds on an idle
machine, a whole scheduler time slice on a loaded one, when the region waits for a
worker that has been descheduled), which a small call never wins back. So each kernel
asks here how many parts its work pays for and runs its parallel loop over that many
parts (`for part in prange(parts)`); a call below the grain runs as one part.

- `GRAIN_SIZE` elements for elementwise loops: PyTorch draws the same line at the same
  32,768 elements (at::internal::GRAIN_SIZE);
- `PRODUCT_GRAIN` multiply-adds for matrix products and the loops built around them
  (convolutions, recurrent steps): below about 2^18 a product takes under ~5
  microseconds on one thread, and splitting it measured slower.

Both are module attributes read at call time, so a test can set them to 1 to run every
parallel loop on every thread. (The thread count itself is parallelism.py's.)
"""
import contextlib

import numba

GRAIN_SIZE = 32768
PRODUCT_GRAIN = 1 << 18


def parts(work, grain=None, most=None):
    """How many parallel parts a call with `work` units gets: one per `grain` units
    (default GRAIN_SIZE), at most Numba's threads and at most `most`; at least one."""
    grain = GRAIN_SIZE if grain is None else grain
    count = min(numba.get_num_threads(), max(1, int(work) // max(1, grain)))
    if most is not None:
        count = min(count, most)
    return max(1, count)


@numba.njit(cache=True)
def bounds(part, parts_count, size):
    """The [start, stop) range of `size` items that `part` of `parts_count` owns."""
    return part * size // parts_count, (part + 1) * size // parts_count


@contextlib.contextmanager
def threads_for(size):
    """Run the block's kernels on one thread when `size` (elements) is below GRAIN_SIZE:
    for kernels whose parallel loop runs over elements (`prange(size)`)."""
    if size >= GRAIN_SIZE:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
