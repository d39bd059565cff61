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

The thread count starts at the cores that are idle when the first kernel is dispatched,
measured then rather than remembered: over PROBE_SECONDS minidl reads how much of each of
its cores other processes used (Linux's /proc/stat), and takes the cores they left idle,
at least one (elsewhere: the cores minus the one-minute load average). A parallel loop
waits for its slowest thread, and a thread whose core another process is using waits
for a scheduler slice, so threads on busy cores cost far more than they bring (measured
on this project's 2-core machine with another process running: four epochs of conv_max
took 6 s on one thread and 17.6 s on two). The load average the count once came from
lags by a minute: it counted minidl's own previous run as another process, and halved
the threads of a run started right after one. On an idle machine that is every core.
`set_num_threads(n)` or `minidl --threads n` overrides it. The BLAS limit is set when
the first kernel is dispatched and again whenever the CPU target changes; NumPy products
that the user's own code runs in the same process are then single-threaded too.
"""
import os
import time

#: Seconds the first dispatch watches the cores before choosing the thread count.
PROBE_SECONDS = 0.1
_state = {"threads": None, "applied": None, "reason": None}


def _numba_pool_size():
    try:
        import numba
    except ImportError:
        return 1
    return numba.config.NUMBA_NUM_THREADS


def _cpu_times(cores):
    """{core: (idle ticks, all ticks)} for `cores` from /proc/stat, or None where there
    is no such file (not Linux)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            lines = stat.read().splitlines()
    except OSError:
        return None
    times = {}
    for line in lines:
        name, *ticks = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores:
            ticks = [int(tick) for tick in ticks[:8]]
            times[int(name[3:])] = (ticks[3] + ticks[4], sum(ticks))  # idle + iowait, everything
    return times


def busy_cores(cores, seconds=PROBE_SECONDS):
    """How many of `cores` (core numbers) other processes keep busy: the share of each
    core's time over the next `seconds` that was not idle, summed; None where the system
    does not say. This process sleeps meanwhile, so only other work counts."""
    before = _cpu_times(cores)
    if not before:
        return None
    time.sleep(seconds)
    after = _cpu_times(cores)
    busy = 0.0
    for core, (idle, total) in before.items():
        elapsed = after[core][1] - total
        if elapsed > 0:
            busy += 1.0 - (after[core][0] - idle) / elapsed
    return busy


def _load_average():
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this system: assume idle
        return 0.0


def idle_cores(pool_size=None, busy=None):
    """(count, why): the cores not busy with other work, at least one: this process's
    cores (at most `pool_size`, default Numba's pool) minus `busy` rounded (default:
    measured now by busy_cores, or the one-minute load average where it cannot be)."""
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    cores = min(len(affinity), _numba_pool_size() if pool_size is None else pool_size)
    if cores == 1:  # nothing to choose, so no look (a pool of one, as each MPI rank has)
        return 1, "1 of 1 cores idle (one core to run on: not measured)"
    how = "given"
    if busy is None:
        busy, how = busy_cores(affinity), f"measured over {PROBE_SECONDS:g} s"
    if busy is None:
        busy, how = _load_average(), "the one-minute load average"
    count = max(1, min(cores, cores - int(busy + 0.5)))
    return count, f"{count} of {cores} cores idle ({how}: {busy:.1f} busy with other work)"


def get_num_threads():
    """The threads minidl's CPU work uses (see the module docstring for the default)."""
    if _state["threads"] is None:
        _state["threads"], _state["reason"] = idle_cores()
    return _state["threads"]


def describe_threads():
    """The thread count and why it is that, in words, for a command to print once."""
    count = get_num_threads()
    return f"{count} thread{'s' if count != 1 else ''}: {_state['reason']}"


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


def set_count(count):
    """The thread count from now on (`minidl.set_num_threads` applies it)."""
    count = int(count)
    if count < 1:
        raise ValueError(f"set_num_threads: the count must be at least 1, got {count}")
    _state["threads"], _state["reason"] = count, "set by set_num_threads (or --threads)"
    _state["applied"] = None
