"""Which Numba kernels still have to be compiled, and a message while they are.

Numba compiles a kernel the first time it runs and, with `cache=True` (every kernel in
`numba_cpu/` has it), keeps the machine code on disk: beside the kernel's source, or in
Numba's user-wide cache when that folder is read-only. The first run of minidl so spends
a while compiling before its first batch; later runs load the code in a second.
`compile_messages()` says so when it happens (Numba announces every compilation as a
"numba:compile" event) instead of leaving a silent pause, and how long it took.
"""
import contextlib
import importlib
import pkgutil
import sys
import time

try:
    from numba.core import event as numba_events
except ImportError:  # minidl then runs its NumPy kernels
    numba_events = None

#: Compilation time per kernel, measured on a shared 2-core machine (the 12 kernels of
#: conv_max in 12-35 s depending on the load), for the estimate said beforehand.
SECONDS_PER_KERNEL = 2.0
#: How many kernels one model compiles, about (conv_max 12, simple_lstm 8).
KERNELS_PER_MODEL = 12


def numba_kernels():
    """Every cached Numba kernel (dispatcher) of minidl.kernels.numba_cpu, by
    "family.name"; empty when Numba is not installed."""
    if numba_events is None:
        return {}
    from numba.core.caching import FunctionCache
    from numba.core.registry import CPUDispatcher

    import minidl.kernels.numba_cpu as package

    kernels = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, CPUDispatcher) and isinstance(getattr(value, "_cache", None), FunctionCache):
                kernels[f"{info.name}.{name}"] = value
    return kernels


def uncompiled_kernels():
    """Names of the Numba kernels with no machine code cached for their current source
    (all of them on a fresh install)."""
    missing = []
    for name, kernel in numba_kernels().items():
        try:
            cached = bool(kernel._cache._cache_file._load_index())  # {} when absent or stale
        except (AttributeError, OSError, EOFError, ValueError):
            cached = False  # Numba's cache layout is private: assume the worst
        if not cached:
            missing.append(name)
    return missing


def compile_estimate(count):
    """About how long compiling `count` kernels takes, in seconds (a multiple of 5)."""
    return max(5, 5 * round(count * SECONDS_PER_KERNEL / 5))


@contextlib.contextmanager
def compile_messages(stream=None):
    """Inside the block, say on `stream` (default stderr) when minidl's kernels start
    compiling, with about how long it takes, and at the end how long it took."""
    if numba_events is None:
        yield None
        return
    reporter = _CompileReporter(stream or sys.stderr, numba_kernels().values())
    numba_events.register("numba:compile", reporter)
    try:
        yield reporter
    finally:
        numba_events.unregister("numba:compile", reporter)
        reporter.finish()


class _CompileReporter(numba_events.Listener if numba_events else object):
    """Counts and times the compilations of minidl's own kernels (not the Numba
    internals they compile on the way) and writes the two messages."""

    def __init__(self, stream, kernels):
        self.stream = stream
        self.ours = {id(kernel) for kernel in kernels}
        self.compiled, self.seconds, self.depth, self.started = 0, 0.0, 0, None

    def _is_ours(self, event):
        return isinstance(event.data, dict) and id(event.data.get("dispatcher")) in self.ours

    def on_start(self, event):
        if not self._is_ours(event):
            return
        if self.depth == 0:
            if self.compiled == 0:
                expected = min(len(uncompiled_kernels()), KERNELS_PER_MODEL) or 1
                self.stream.write(f"compiling kernels (once, about {compile_estimate(expected)} s; later runs "
                                  "load them from Numba's cache)\n")
                self.stream.flush()
            self.started = time.perf_counter()
        self.depth += 1

    def on_end(self, event):
        if not self._is_ours(event):
            return
        self.depth -= 1
        if self.depth == 0:
            self.compiled += 1
            self.seconds += time.perf_counter() - self.started

    def finish(self):
        if self.compiled:
            self.stream.write(f"compiled {self.compiled} kernel{'s' if self.compiled > 1 else ''} "
                              f"in {self.seconds:.0f} s\n")
            self.stream.flush()
