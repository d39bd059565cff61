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

The thread count starts at the cores that are idle when the first kernel is dispatched:
the cores this process may run on (at most Numba's pool, NUMBA_NUM_THREADS) minus the
machine's one-minute load average, rounded, and at least one. A parallel loop waits for
its slowest thread, and a thread whose core another process is using waits for a
scheduler slice, so threads on busy cores cost far more than they bring (measured on
this project's 2-core machine with another process running: four epochs of conv_max
took 6 s on one thread and 17.6 s on two). On an idle machine that is every core.
`set_num_threads(n)` or `minidl --threads n` overrides it. The BLAS limit is set when
the first kernel is dispatched and again whenever the CPU target changes; NumPy products
that the user's own code runs in the same process are then single-threaded too.
"""
import os

_state = {"threads": None, "applied": None}


def _numba_pool_size():
    try:
        import numba
    except ImportError:
        return 1
    return numba.config.NUMBA_NUM_THREADS


def idle_cores(pool_size=None, load=None):
    """The cores not busy with other work: this process's cores (at most `pool_size`,
    default Numba's pool) minus the one-minute load average, rounded; at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cores = min(cores, _numba_pool_size() if pool_size is None else pool_size)
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # no load average on this system: assume idle
            load = 0.0
    return max(1, min(cores, cores - int(load + 0.5)))


def get_num_threads():
    """The threads minidl's CPU work uses (see the module docstring for the default)."""
    if _state["threads"] is None:
        _state["threads"] = idle_cores()
    return _state["threads"]


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
