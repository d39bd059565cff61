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


def _lookup(target, family, name):
    key = (target, family, name)
    if key not in _cache:
        try:
            module = importlib.import_module(f"minidl.kernels.{_PACKAGES[target]}.{family}")
        except ModuleNotFoundError as error:
            if error.name != f"minidl.kernels.{_PACKAGES[target]}.{family}":
                raise
            module = None
        function = getattr(module, name, None) if module is not None else None
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
