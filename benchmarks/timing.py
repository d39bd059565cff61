"""How the benchmarks measure: threads, interleaved timing with medians, the machine's
matmul peak, and the peak memory of a training step.

Threads: `set_threads(n)` gives minidl (`minidl.set_num_threads`, the one place that
decides minidl's pools) and PyTorch (`torch.set_num_threads`) n threads each; a run
that measures several counts calls it before every sample (`interleaved`'s prepare).

Interleaving: every repetition calls each case once, in an order rotated from one
repetition to the next, so a slow spell of the (shared) machine lands on every case
alike instead of on whichever ran last. A sample is `number` back-to-back calls, with
`number` chosen during warm-up so that a sample lasts at least `min_sample_s`; the
reported time per call is the median of the samples, with the quartiles beside it.
"""
import argparse
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np

def add_run_options(parser):
    """The options every speed benchmark shares: repetitions and a JSON copy."""
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (5 instead of 15)")
    parser.add_argument("--json", metavar="PATH", help="also write every number to this JSON file")


def thread_counts(text):
    """'2,1' -> (2, 1), for argparse: the thread counts a run measures, in order."""
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected thread counts separated by commas, got {text!r}") from None
    if min(counts) < 1 or len(set(counts)) != len(counts):
        raise argparse.ArgumentTypeError(f"expected distinct positive thread counts, got {text!r}")
    return counts


def repeats(args):
    """Timed repetitions per case under add_run_options' --quick."""
    return 5 if args.quick else 15


def write_json(path, record):
    """Write `record` to `path` (add_run_options' --json) when one was given."""
    if path:
        with open(path, "w") as out:
            json.dump(record, out, indent=1)
        print(f"\nwrote {path}")


def set_threads(count):
    """Give both frameworks `count` threads: minidl through its one switch,
    `minidl.set_num_threads` (with the numba kernels: Numba's pool gets `count`, the BLAS
    libraries stay on one thread; see minidl.kernels.parallelism), and PyTorch, when it
    is installed, through `torch.set_num_threads`."""
    import minidl

    minidl.set_num_threads(count)
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(count)


def thread_settings(counts):
    """{count: what each pool runs on after set_threads(count)}, so the record shows
    the threading design in force, not only the count asked for."""
    import minidl
    import numba
    from threadpoolctl import threadpool_info

    settings = {}
    for count in counts:
        set_threads(count)
        setting = {"minidl": minidl.get_num_threads(), "numba": numba.get_num_threads(),
                   "blas": [info.get("num_threads") for info in threadpool_info() if info.get("user_api") == "blas"]}
        try:
            import torch
        except ImportError:
            pass
        else:
            setting["torch"] = torch.get_num_threads()
        settings[str(count)] = setting
    return settings


def scheduler():
    """The process' scheduling policy: "SCHED_FIFO priority 10" under `chrt -f 10`,
    else "SCHED_OTHER nice N"."""
    policy = os.sched_getscheduler(0)
    if policy in (os.SCHED_FIFO, os.SCHED_RR):
        name = "SCHED_FIFO" if policy == os.SCHED_FIFO else "SCHED_RR"
        return f"{name} priority {os.sched_getparam(0).sched_priority}"
    names = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_BATCH: "SCHED_BATCH", os.SCHED_IDLE: "SCHED_IDLE"}
    return f"{names.get(policy, policy)} nice {os.nice(0)}"


def environment():
    """What a reader needs to reproduce a table: versions, the BLAS kernel, the
    scheduler and the load the run met."""
    import numba
    from threadpoolctl import threadpool_info

    blas = [f"{info.get('internal_api')} {info.get('version')} ({info.get('architecture')})"
            for info in threadpool_info() if info.get("user_api") == "blas"]
    info = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threading_layer": _numba_threading_layer(),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "blas": blas,
        "cpu_count": os.cpu_count(),
        "scheduler": scheduler(),
        "load_average_1min": os.getloadavg()[0],
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "unset"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE", "unset"),
        "MINIDL_KERNELS": os.environ.get("MINIDL_KERNELS", "unset (numba)"),
    }
    try:
        import torch
    except ImportError:
        return info
    info.update(torch=torch.__version__)
    return info


def _numba_threading_layer():
    """The layer Numba's parallel kernels run on (known once one has run)."""
    import numba

    numba.njit(parallel=True)(lambda a: a.sum())(np.ones(4))
    return numba.threading_layer()


class Timing:
    """Seconds per call of one case: the median and quartiles over `samples`."""

    def __init__(self, seconds):
        self.samples = sorted(seconds)
        self.median = statistics.median(self.samples)
        quartiles = statistics.quantiles(self.samples, n=4) if len(self.samples) > 1 else [self.median] * 3
        self.q1, self.q3 = quartiles[0], quartiles[2]

    def as_dict(self):
        return {"median_ms": self.median * 1e3, "q1_ms": self.q1 * 1e3, "q3_ms": self.q3 * 1e3,
                "samples": len(self.samples)}


def _calls_per_sample(fn, min_sample_s, warmup):
    elapsed = 0.0
    for _ in range(warmup):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
    return max(1, math.ceil(min_sample_s / max(elapsed, 1e-9)))


def interleaved(cases, repeats, warmup=2, min_sample_s=0.02, prepare=None):
    """{label: Timing} for `cases` ({label: zero-argument callable}), interleaved.

    prepare: called with a case's label before its warm-up and before each of its
    samples, outside the timed part (compare sets the case's thread count with it)."""
    labels = list(cases)
    prepare = prepare or (lambda label: None)
    numbers = {}
    for label in labels:
        prepare(label)
        numbers[label] = _calls_per_sample(cases[label], min_sample_s, warmup)
    seconds = {label: [] for label in labels}
    for repeat in range(repeats):
        shift = repeat % len(labels)
        for label in labels[shift:] + labels[:shift]:
            fn, number = cases[label], numbers[label]
            prepare(label)
            gc.collect()
            start = time.perf_counter()
            for _ in range(number):
                fn()
            seconds[label].append((time.perf_counter() - start) / number)
    return {label: Timing(seconds[label]) for label in labels}


def matmul_peak_gflops(threads, size=2048, repeats=5):
    """The machine's float32 matmul rate in GFLOP/s on `threads` threads: the best of
    `repeats` NumPy (BLAS) products of two size x size matrices, 2 size^3 FLOPs each.
    The best, not the median: it stands for what the hardware can do, the ceiling the
    models are held to."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    with threadpool_limits(limits=threads, user_api="blas"):
        a @ b
        best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---------------------------------------------------------------- peak memory
def _status_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def peak_rss_growth(step, steps=3):
    """Peak resident memory (MiB) that `step` adds over the resident memory just before
    it, the most over `steps` calls; Linux only.

    The kernel's high-water mark (VmHWM) is reset through /proc/self/clear_refs before
    the calls. Run it in a fresh process started by `measure_in_subprocess`, which sets
    glibc's malloc to map every block above 64 KiB on its own, so freed arrays go back
    to the system at once and the resident size follows the live arrays of either
    framework rather than what the allocator keeps cached.
    """
    step()  # warm-up: lazy initialisation, Numba compilation, optimiser state
    gc.collect()
    before = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    for _ in range(steps):
        step()
    return (_status_kib("VmHWM") - before) / 1024


def measure_in_subprocess(module, arguments, timeout=600):
    """Run `python -m module *arguments` in a fresh process with malloc's mmap
    threshold fixed at 64 KiB and return the JSON it prints on its last line."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="65536")
    done = subprocess.run([sys.executable, "-m", module, *arguments], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(arguments)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
