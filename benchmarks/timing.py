"""How the benchmarks measure: threads, interleaved timing with medians, the machine's
matmul peak, and the peak memory of a training step.

Interleaving: every repetition calls each case once, in an order rotated from one
repetition to the next, so a slow spell of the (shared) machine lands on every case
alike instead of on whichever ran last. A sample is `number` back-to-back calls, with
`number` chosen during warm-up so that a sample lasts at least `min_sample_s`; the
reported time per call is the median of the samples, with the quartiles beside it.
"""
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np

_limits = {}


def add_run_options(parser):
    """The options every speed benchmark shares: repetitions, a JSON copy and thread counts."""
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (5 instead of 15)")
    parser.add_argument("--json", metavar="PATH", help="also write every number to this JSON file")
    parser.add_argument("--threads", type=int, default=2, help="threads for BLAS, Numba and PyTorch (default 2)")
    parser.add_argument("--blas-threads", type=int, help="threads for the BLAS minidl calls (default: --threads)")


def repeats(args):
    """Timed repetitions per case under add_run_options' --quick."""
    return 5 if args.quick else 15


def write_json(path, record):
    """Write `record` to `path` (add_run_options' --json) when one was given."""
    if path:
        with open(path, "w") as out:
            json.dump(record, out, indent=1)
        print(f"\nwrote {path}")


def set_threads(count, blas=None):
    """Give Numba, PyTorch (when installed) and the BLAS that NumPy and Numba call
    `count` threads; `blas` gives that BLAS another count (PyTorch's own stays `count`)."""
    import numba
    import scipy.linalg.cython_blas  # noqa: F401  Numba's np.dot calls SciPy's BLAS: load it so the limit covers it
    from threadpoolctl import threadpool_limits

    import minidl

    # minidl's own rule (kernels/parallelism.py): Numba gets the threads, BLAS one.
    minidl.set_num_threads(count)
    if blas is not None:  # Kept referenced so the limit lasts for the whole run.
        _limits["blas"] = threadpool_limits(limits=blas, user_api="blas")
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(count)


def environment():
    """What a reader needs to reproduce a table: versions, threads, the BLAS kernel."""
    import numba
    from threadpoolctl import threadpool_info

    blas = [f"{info.get('internal_api')} {info.get('version')} ({info.get('architecture')}, {info.get('num_threads')} threads)"
            for info in threadpool_info() if info.get("user_api") == "blas"]
    info = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(),
        "blas_threads": [info.get("num_threads") for info in threadpool_info() if info.get("user_api") == "blas"],
        "numba_threading_layer": _numba_threading_layer(),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "blas": blas,
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "unset"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE", "unset"),
        "MINIDL_KERNELS": os.environ.get("MINIDL_KERNELS", "unset (numba)"),
    }
    try:
        import torch
    except ImportError:
        return info
    info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
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


def interleaved(cases, repeats, warmup=2, min_sample_s=0.02):
    """{label: Timing} for `cases` ({label: zero-argument callable}), interleaved."""
    labels = list(cases)
    numbers = {label: _calls_per_sample(cases[label], min_sample_s, warmup) for label in labels}
    seconds = {label: [] for label in labels}
    for repeat in range(repeats):
        shift = repeat % len(labels)
        for label in labels[shift:] + labels[:shift]:
            fn, number = cases[label], numbers[label]
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
