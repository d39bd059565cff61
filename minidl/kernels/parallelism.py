"""How minidl uses the CPU's cores: one thread pool at a time.

Three pools could run minidl's work on the CPU: NumPy's OpenBLAS, SciPy's OpenBLAS
(the one Numba's `np.dot` calls) and Numba's OpenMP pool. Each keeps its idle workers
spinning for a while after a parallel region, so when two of them take turns on the
same cores, each waits for the other's spinning threads to be descheduled. Measured
here before this module: conv_fully training at batch 256 took 531 ms a step on two
threads against 376 ms on one, while PyTorch nearly halved its time. Hence one rule:

- with the `numba` kernels (the default on the CPU) every parallel loop is Numba's.
  Both BLAS libraries run on one thread, and the kernels split their work, matrix
  products included (numba_cpu/math.py), into as many parts for Numba's threads as the
  work pays for (numba_cpu/threads.py decides, from the size of each call);
- with the `numpy` reference kernels nothing runs on Numba, and the BLAS libraries get
  the threads.

The thread count is Numba's default (the machine's cores, or NUMBA_NUM_THREADS) until
`set_num_threads(n)` or `minidl --threads n` changes it. The BLAS limit is set when the
first kernel is dispatched and again whenever the CPU target changes; NumPy products
that the user's own code runs in the same process are then single-threaded too.
"""
_state = {"threads": None, "applied": None}


def _numba_pool_size():
    try:
        import numba
    except ImportError:
        return 1
    return numba.config.NUMBA_NUM_THREADS


def get_num_threads():
    """The threads minidl's CPU work uses."""
    return _state["threads"] if _state["threads"] is not None else _numba_pool_size()


def _limit_blas(count):
    try:
        import scipy.linalg.cython_blas  # noqa: F401 - load SciPy's BLAS (Numba's np.dot) so the limit reaches it
        import threadpoolctl
    except ImportError:
        return
    threadpoolctl.threadpool_limits(limits=count, user_api="blas")


def apply(target):
    """Give the pools their threads for the CPU kernel `target` ('numba' or 'numpy')."""
    count = get_num_threads()
    if _state["applied"] == (target, count):
        return
    if target == "numba":
        import numba

        numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))
        _limit_blas(1)
    else:
        _limit_blas(count)
    _state["applied"] = (target, count)


def set_num_threads(count):
    """Use `count` threads for minidl's CPU work: Numba's parallel loops with the numba
    kernels (BLAS stays on one thread), the BLAS libraries with the numpy kernels.
    Numba cannot start more threads than its pool holds (NUMBA_NUM_THREADS, read when
    Numba starts), so a larger count is capped there."""
    from minidl.kernels import cpu_target

    count = int(count)
    if count < 1:
        raise ValueError(f"set_num_threads: the count must be at least 1, got {count}")
    _state["threads"] = count
    _state["applied"] = None
    apply(cpu_target())
