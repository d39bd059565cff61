"""The one place that picks which implementation of a hot loop runs.

Kernels are plain functions on raw arrays, grouped by family (`conv`, `pool`,
`embedding`, `recurrent`, `elementwise`, ...) and by target:

    reference/<family>.py   plain NumPy (array module from the inputs, so it also runs
                            on CuPy): the readable version and the oracle in tests
    numba_cpu/<family>.py   Numba kernels for the CPU, same names and signatures
    cuda/<family>.py        CuPy kernels for the GPU, same names and signatures

`get_kernel(family, name, *arrays)` returns the implementation for the arrays' device:
on CuPy arrays the `cuda` target, on NumPy arrays the target chosen by `MINIDL_KERNELS`
(`numba`, the default where Numba is installed, or `numpy`). A target that lacks a
kernel falls back to the reference one, so a new op only needs its reference twin.
Choosing the CPU target also sets how the cores are shared (see parallelism.py).

`NUMBA_KERNELS` and `CUDA_KERNELS` declare the kernels a target writes itself; the tests
hold each target's modules to its list (every declared kernel defined there, no
undeclared one), so a kernel renamed or lost in a target fails a test instead of
silently falling back. A new kernel is one more name in its family's line.
"""
import contextlib
import importlib
import os

from minidl.backend import is_cupy_array
from minidl.kernels import parallelism

TARGETS = ("numpy", "numba")
_PACKAGES = {"numpy": "reference", "numba": "numba_cpu", "cuda": "cuda"}
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

#: family -> the kernels cuda/<family>.py defines itself (docs/gpu.md lists the same);
#: every other reference kernel serves CuPy arrays as written.
CUDA_KERNELS = {
    "activation": ("relu_forward", "relu_backward", "elu_forward", "elu_backward"),
    "dropout": ("dropout_forward", "dropout_backward"),
    "embedding": ("embedding_backward", "embedding_bag_forward", "embedding_bag_backward"),
    "optim": ("adam_update", "adam_update_rows", "sgd_update", "sgd_update_rows"),
    "conv": ("conv2d_forward", "conv2d_backward"),
    "pool": ("max_pool2d_forward", "max_pool2d_backward", "sum_pool2d_forward", "sum_pool2d_backward"),
    "recurrent": ("rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward", "gru_forward", "gru_backward"),
}

#: target -> its declared kernels (the numpy target is the reference itself).
DECLARED = {"numba": NUMBA_KERNELS, "cuda": CUDA_KERNELS}


def _numba_available():
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def cpu_target():
    """The CPU kernel target in force: 'numba' or 'numpy'."""
    if _state["cpu_target"] is None:
        requested = os.environ.get("MINIDL_KERNELS", "numba").lower()
        if requested not in TARGETS:
            raise ValueError(f"MINIDL_KERNELS={requested!r}: choose one of {', '.join(TARGETS)}")
        if requested == "numba" and not _numba_available():
            requested = "numpy"
        _set_target(requested)
    return _state["cpu_target"]


def _set_target(target):
    _state["cpu_target"] = target
    parallelism.apply(target)


def set_cpu_target(target):
    """Choose the CPU kernels for the rest of the process: 'numba' or 'numpy'."""
    if target not in TARGETS:
        raise ValueError(f"unknown kernel target {target!r}: choose one of {', '.join(TARGETS)}")
    if target == "numba" and not _numba_available():
        raise RuntimeError("the numba kernel target needs Numba: pip install numba")
    _set_target(target)


@contextlib.contextmanager
def use(target):
    """Run the block with the given CPU kernel target ('numba' or 'numpy')."""
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
    """Kernel `family.name` as `target` ('numba' or 'cuda') defines it itself, never the
    reference fallback: a LookupError when the target lacks it. What a test that holds
    a target equal to its reference twin must call."""
    function = getattr(_module(target, family), name, None)
    if function is None or function is getattr(_module("numpy", family), name, None):
        raise LookupError(f"kernels/{_PACKAGES[target]}/{family}.py defines no {name} of its own")
    return function
