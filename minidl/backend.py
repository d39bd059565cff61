"""Where arrays live: the array module (NumPy or CuPy), the device, the default dtype
and the seeded random generators.

Everything above this layer asks here instead of importing NumPy or CuPy itself:
`get_array_module(*arrays)` gives the module that owns the arrays, so one op serves
both. CuPy is only imported when the user asks for the CUDA device, so GPU code is
never touched on a machine without it.
"""
import contextlib
import os
import sys

import numpy as np

_state = {
    "dtype": np.float32,
    "device": None,  # resolved lazily from MINIDL_DEVICE on first use
    "seed": None,
    "generators": {},  # device name -> random Generator
}

DEVICES = ("cpu", "cuda")


# --------------------------------------------------------------------------- dtype
def default_dtype():
    """The floating dtype new tensors get (float32 unless changed)."""
    return _state["dtype"]


def set_default_dtype(dtype):
    """Set the floating dtype new tensors get: float32 or float64."""
    dtype = np.dtype(dtype).type
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"default dtype must be float32 or float64, got {np.dtype(dtype).name}")
    _state["dtype"] = dtype


# ----------------------------------------------------------------------- array module
def cupy_module():
    """The CuPy module, imported on demand; a clear error where it is missing."""
    try:
        import cupy
    except ImportError as error:
        raise RuntimeError(
            "the CUDA device needs CuPy: install it with `pip install -e \".[gpu]\"` "
            "on a machine with an NVIDIA GPU"
        ) from error
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDA driver missing or broken
        raise RuntimeError(f"CuPy is installed but no CUDA GPU is usable: {error}") from error
    if count == 0:
        raise RuntimeError("CuPy is installed but this machine has no CUDA GPU")
    return cupy


def is_cupy_array(array):
    """True for a CuPy ndarray; never imports CuPy."""
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(array, cupy.ndarray)


def get_array_module(*arrays):
    """NumPy, or CuPy when any of `arrays` is a CuPy array (as chainer does)."""
    for array in arrays:
        if is_cupy_array(array):
            return sys.modules["cupy"]
    return np


def device_of(array):
    """'cuda' for a CuPy array, 'cpu' otherwise."""
    return "cuda" if is_cupy_array(array) else "cpu"


def to_numpy(array):
    """A NumPy copy (or view) of a NumPy or CuPy array."""
    if is_cupy_array(array):
        return array.get()
    return np.asarray(array)


def to_device(array, device):
    """The array on `device` ('cpu' or 'cuda'); the same object when already there."""
    device = check_device(device)
    if device_of(array) == device:
        return array
    if device == "cpu":
        return array.get()
    return cupy_module().asarray(array)


# ---------------------------------------------------------------------------- device
def check_device(device):
    device = str(device).lower()
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}: choose one of {', '.join(DEVICES)}")
    return device


def current_device():
    """The device new tensors are made on: 'cpu' unless MINIDL_DEVICE or `device()` says."""
    if _state["device"] is None:
        requested = check_device(os.environ.get("MINIDL_DEVICE", "cpu"))
        if requested == "cuda":
            cupy_module()
        _state["device"] = requested
    return _state["device"]


def array_module_for(device=None):
    """The array module of `device` (default: the current device)."""
    device = check_device(device) if device is not None else current_device()
    return cupy_module() if device == "cuda" else np


@contextlib.contextmanager
def device(name):
    """Make tensors and parameters on `name` ('cpu' or 'cuda') inside the block."""
    name = check_device(name)
    if name == "cuda":
        cupy_module()
    previous = current_device()
    _state["device"] = name
    try:
        yield name
    finally:
        _state["device"] = previous


# ------------------------------------------------------------------------ randomness
def manual_seed(seed):
    """Seed every random choice minidl makes (initialisers, dropout, shuffling)."""
    _state["seed"] = int(seed)
    _state["generators"] = {}


def generator(device=None):
    """The seeded random Generator of `device` (NumPy's on the CPU, CuPy's on CUDA).

    Each device keeps its own stream, seeded from `manual_seed` (or from OS entropy
    when no seed was set), so a run is reproducible per seed on each device.
    """
    device = check_device(device) if device is not None else current_device()
    generators = _state["generators"]
    if device not in generators:
        seed = _state["seed"]
        if device == "cpu":
            generators[device] = np.random.default_rng(seed)
        else:
            cupy = cupy_module()
            generators[device] = cupy.random.default_rng(seed)
    return generators[device]


def numpy_generator():
    """The CPU Generator: used for choices that stay on the host (shuffling, init)."""
    return generator("cpu")


def next_seed():
    """A fresh 63-bit integer drawn from the seeded CPU stream, for kernels that seed
    their own generator (the Numba dropout kernel does)."""
    return int(numpy_generator().integers(0, 2**63 - 1))
