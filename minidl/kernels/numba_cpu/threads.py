"""How many threads a Numba kernel call gets: all of Numba's for large arrays, only the
calling thread below a grain size.

Starting a parallel region costs microseconds on an idle machine, which a small array
never wins back; on a loaded one it can cost a whole scheduler time slice (measured
here: about 16-20 ms per region with Numba's OpenMP layer and 4 busy processes on 2
cores, against 0.1 ms for the same 19,200-element elu on one thread), because the
region waits for a worker that has been descheduled. PyTorch draws the same line, at
the same 32,768 elements (at::internal::GRAIN_SIZE). The thread count is Numba's
thread-local setting, so other threads' kernels are unaffected.
"""
import contextlib

import numba

GRAIN_SIZE = 32768


@contextlib.contextmanager
def threads_for(size):
    """Run the block's kernels on one thread when `size` (elements) is below GRAIN_SIZE."""
    if size >= GRAIN_SIZE:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
