"""The one place that picks which implementation of a hot loop runs.

Kernels are plain functions on raw arrays, grouped by family (`conv`, `pool`,
`embedding`, `recurrent`, `elementwise`, ...) and by target:

    reference/<family>.py   plain NumPy (array module from the inputs, so it also runs
                            on CuPy): the readable version and the oracle in tests
    numba_cpu/<family>.py   Numba kernels for the CPU, same names and signatures
    numba_cuda/<family>.py  Numba CUDA kernels (numba.cuda.jit) for the GPU, on CuPy
                            arrays, same names and signatures

`get_kernel(family, name, *arrays)` returns the implementation for the arrays' device:
on CuPy arrays the `cuda` target (numba_cuda), on NumPy arrays the target chosen by
`MINIDL_KERNELS` (`numba`, the default where Numba is installed, or `numpy`). A target
that lacks a kernel falls back to the reference one, so a new op only needs its
reference twin. Choosing the CPU target also sets how the cores are shared (see
parallelism.py).

`MINIDL_KERNELS=cudasim` is a test target, never a default: it sends NumPy arrays to the
numba_cuda kernels, which Numba's CUDA simulator then runs on the CPU, thread by thread.
It needs NUMBA_ENABLE_CUDASIM=1 in the environment before numba.cuda is first imported
(tests/conftest.py sets it), and is slow: for tests on small arrays only.

`NUMBA_KERNELS` and `CUDA_KERNELS` declare the kernels a target writes itself; the tests
hold each target's modules to its list (every declared kernel defined there, no
undeclared one), so a kernel renamed or lost in a target fails a test instead of
silently falling back. A new kernel is one more name in its family's line.
"""
import contextlib
import importlib
import os
import sys

from minidl.backend import is_cupy_array
from minidl.kernels import parallelism

#: The CPU targets MINIDL_KERNELS may name; "cudasim" only in tests (see above).
TARGETS = ("numpy", "numba", "cudasim")
_CHOICES = "choose one of numpy, numba (or cudasim, a test target)"
_PACKAGES = {"numpy": "reference", "numba": "numba_cpu", "cuda": "numba_cuda", "cudasim": "numba_cuda"}
_state = {"cpu_target": None}
_cache = {}

#: family -> the kernels numba_cpu/<family>.py defines itself.
NUMBA_KERNELS = {
    "activation": ("relu_forward", "relu_backward", "elu_forward", "elu_backward"),
    "dropout": ("dropout_forward", "dropout_backward"),
    "embedding": ("embedding_forward", "embedding_backward", "embedding_bag_forward", "embedding_bag_backward"),
    "optim": ("adam_update", "adam_update_rows", "sgd_update", "sgd_update_rows"),
    "conv": ("conv2d_forward", "conv2d_backward", "conv1d_elu_pool_forward", "conv1d_elu_pool_backward"),
    "pool": ("max_pool2d_forward", "max_pool2d_backward", "sum_pool2d_forward", "sum_pool2d_backward"),
    "recurrent": ("rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward", "gru_forward", "gru_backward"),
    "math": ("matmul",),
}

#: family -> the kernels numba_cuda/<family>.py defines itself, for the cuda and cudasim
#: targets (docs/gpu.md lists the same); every other reference kernel serves CuPy arrays
#: as written (products through cuBLAS, reductions through CuPy).
CUDA_KERNELS = {
    "activation": ("relu_forward", "relu_backward", "elu_forward", "elu_backward"),
    "dropout": ("dropout_forward", "dropout_backward"),
    "embedding": ("embedding_forward", "embedding_backward", "embedding_bag_forward", "embedding_bag_backward"),
    "optim": ("adam_update", "adam_update_rows", "sgd_update", "sgd_update_rows"),
    "conv": ("conv2d_forward", "conv2d_backward", "conv1d_elu_pool_forward", "conv1d_elu_pool_backward"),
    "pool": ("max_pool2d_forward", "max_pool2d_backward", "sum_pool2d_forward", "sum_pool2d_backward"),
    "recurrent": ("rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward", "gru_forward", "gru_backward"),
}

#: target -> its declared kernels (the numpy target is the reference itself).
DECLARED = {"numba": NUMBA_KERNELS, "cuda": CUDA_KERNELS, "cudasim": CUDA_KERNELS}


def _numba_available():
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _check_simulator(source):
    """The cudasim target runs only where numba.cuda is (or will be) Numba's simulator."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        raise RuntimeError(f"{source}: the cudasim target runs the CUDA kernels in Numba's CUDA simulator; set "
                           "NUMBA_ENABLE_CUDASIM=1 in the environment before Python starts")
    if "numba.cuda" in sys.modules and "numba.cuda.simulator_init" not in sys.modules:
        raise RuntimeError(f"{source}: numba.cuda was imported before NUMBA_ENABLE_CUDASIM=1 was set, so it drives "
                           "a GPU, not the simulator; set the variable before Python starts")


def cpu_target():
    """The CPU kernel target in force: 'numba', 'numpy' or (tests only) 'cudasim'."""
    if _state["cpu_target"] is None:
        requested = os.environ.get("MINIDL_KERNELS", "numba").lower()
        if requested not in TARGETS:
            raise ValueError(f"MINIDL_KERNELS={requested!r}: {_CHOICES}")
        if requested == "numba" and not _numba_available():
            requested = "numpy"
        if requested == "cudasim":
            _check_simulator("MINIDL_KERNELS=cudasim")
        _set_target(requested)
    return _state["cpu_target"]


def _set_target(target):
    _state["cpu_target"] = target
    parallelism.apply(target)


def set_cpu_target(target):
    """Choose the CPU kernels for the rest of the process: 'numba', 'numpy' or (tests
    only) 'cudasim'."""
    if target not in TARGETS:
        raise ValueError(f"unknown kernel target {target!r}: {_CHOICES}")
    if target in ("numba", "cudasim") and not _numba_available():
        raise RuntimeError(f"the {target} kernel target needs Numba: pip install numba")
    if target == "cudasim":
        _check_simulator("the cudasim kernel target")
    _set_target(target)



def set_num_threads(count):
    """Use `count` threads for minidl's CPU work: Numba's parallel loops with the numba
    kernels (BLAS stays on one thread), the BLAS libraries with the numpy kernels
    (see parallelism.py). Numba cannot start more threads than its pool holds
    (NUMBA_NUM_THREADS, read when Numba starts), so a larger count is capped there."""
    parallelism.set_count(count)
    parallelism.apply(cpu_target())


@contextlib.contextmanager
def use(target):
    """Run the block with the given CPU kernel target ('numba', 'numpy' or 'cudasim')."""
    previous = cpu_target()
    set_cpu_target(target)
    try:
        yield target
    finally:
        _set_target(previous)


def target_for(*arrays):
    """'cuda' when any array is a CuPy array, else the CPU target in force."""
    if any(is_cupy_array(a) for a in arrays):
        return "cuda"
    return cpu_target()


def _module(target, family):
    """kernels/<target's package>/<family>.py, or None where the target has no such file."""
    path = f"minidl.kernels.{_PACKAGES[target]}.{family}"
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError as error:
        if error.name != path:
            raise
        return None


def _lookup(target, family, name):
    key = (target, family, name)
    if key not in _cache:
        function = getattr(_module(target, family), name, None)
        if function is None:
            if target == "numpy":
                raise LookupError(f"no reference kernel {family}.{name}")
            function = _lookup("numpy", family, name)
        _cache[key] = function
    return _cache[key]


def get_kernel(family, name, *arrays):
    """The implementation of kernel `family.name` for the device of `arrays`."""
    return _lookup(target_for(*arrays), family, name)


def reference_kernel(family, name):
    """The plain NumPy implementation: the oracle the other targets are tested against."""
    return _lookup("numpy", family, name)


def own_kernel(target, family, name):
    """Kernel `family.name` as `target` ('numba', 'cuda', 'cudasim') defines it itself, never the
    reference fallback: a LookupError when the target lacks it. What a test that holds
    a target equal to its reference twin must call."""
    function = getattr(_module(target, family), name, None)
    if function is None or function is getattr(_module("numpy", family), name, None):
        raise LookupError(f"kernels/{_PACKAGES[target]}/{family}.py defines no {name} of its own")
    return function
