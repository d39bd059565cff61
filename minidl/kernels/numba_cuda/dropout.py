"""CUDA twins of kernels/reference/dropout.py: the mask is drawn, applied and stored in
one pass, one thread per element, with no random-number generator state on the device.

Element i's uniform number is the i-th output of SplitMix64 (Steele, Lea & Flood 2014)
started from `seed`, the counter-based stream of kernels/numba_cpu/dropout.py:

    z_i = mix(seed + (i + 1) * 0x9E3779B97F4A7C15)       (all mod 2^64)
    u_i = (z_i >> 11) / 2^53,   keep_i = u_i >= rate

so the mask depends only on the seed and the element's position, never on how CUDA
schedules the threads: a seed gives the same mask on every run, every GPU, and the
Numba CPU target, bit for bit. The NumPy reference's generator differs, so its masks
agree with these in distribution only.
"""
import contextlib
import math
import warnings

import numpy as np
from numba import cuda

from minidl.backend import get_array_module
from minidl.kernels.numba_cuda.launch import flat, launch, simulator_active

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


@cuda.jit(device=True)
def _mix(z):
    """SplitMix64's finaliser; every operand is uint64 so the products wrap mod 2^64."""
    z = (z ^ (z >> np.uint64(30))) * _MIX_1
    z = (z ^ (z >> np.uint64(27))) * _MIX_2
    return z ^ (z >> np.uint64(31))


@cuda.jit
def _dropout_forward(x, seed, threshold, scale, out, keep):
    i = cuda.grid(1)
    if i < x.size:
        # u_i >= rate, compared on the 53-bit integer to spare a conversion.
        kept = (_mix(seed + np.uint64(i + 1) * _GOLDEN) >> np.uint64(11)) >= threshold
        keep[i] = kept
        # A dropped element is x * 0, so NaN stays NaN, as in the Numba twin.
        if kept:
            out[i] = x[i] * scale
        else:
            out[i] = x[i] * 0


@cuda.jit
def _dropout_backward(grad, keep, scale, out):
    i = cuda.grid(1)
    if i < grad.size:
        if keep[i]:
            out[i] = grad[i] * scale
        else:
            out[i] = grad[i] * 0


def _threshold(rate):
    """u >= rate for u = k / 2^53 exactly when k >= ceil(rate * 2^53)."""
    return np.uint64(math.ceil(rate * 2.0**53))


@contextlib.contextmanager
def _wrapping_integers():
    """The simulator computes the uint64 products above with NumPy scalars, which warn
    when they wrap; wrapping mod 2^64 is the arithmetic meant (the GPU's), so those
    warnings are silenced for the launch. On a GPU there is nothing to silence."""
    if not simulator_active():
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "overflow encountered in scalar (multiply|add)", RuntimeWarning)
        yield


def dropout_forward(x, rate, seed):
    """(y, keep): y = x * keep / (1 - rate); keep is True with probability 1 - rate,
    drawn from the counter-based stream of `seed` (see the module docstring)."""
    xp = get_array_module(x)
    out = xp.empty(x.shape, dtype=x.dtype)
    keep = xp.empty(x.shape, dtype=xp.bool_)
    seed = np.uint64(int(seed) % 2**64)
    scale = x.dtype.type(1.0 / (1.0 - rate))
    with _wrapping_integers():
        launch(_dropout_forward, x.size, flat(x), seed, _threshold(rate), scale, out.reshape(-1), keep.reshape(-1))
    return out, keep


def dropout_backward(grad, keep, rate):
    """dy/dx = keep / (1 - rate)."""
    out = get_array_module(grad).empty(grad.shape, dtype=grad.dtype)
    scale = grad.dtype.type(1.0 / (1.0 - rate))
    launch(_dropout_backward, grad.size, flat(grad), flat(keep), scale, out.reshape(-1))
    return out
