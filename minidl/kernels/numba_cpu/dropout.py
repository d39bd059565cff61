"""Numba twins of kernels/reference/dropout.py: inverted dropout with the keep-mask
drawn inside the kernel.

The random numbers come from a counter-based generator, so every element is drawn
independently and in parallel: element i of a call seeded with `seed` gets the i-th
output of SplitMix64 (Steele, Lea & Flood 2014) started from `seed`,

    z_i = mix(seed + (i + 1) * 0x9E3779B97F4A7C15)       (all mod 2^64)
    u_i = (z_i >> 11) / 2^53                              (53 bits, uniform in [0, 1))

where mix is SplitMix64's xor-shift-multiply finaliser (a bijection of 64-bit words
with full avalanche, so nearby seeds give unrelated streams). The element is kept when
u_i >= rate, i.e. with probability 1 - rate to within 2^-53. This is the CUDA kernel's
stream (kernels/numba_cuda/dropout.py), so a seed gives the same mask on the CPU and the GPU,
and on any number of threads; it differs from the NumPy reference's generator, so the
masks of those two targets agree in distribution only.
"""
import math

import numpy as np
from numba import njit, prange

from minidl.kernels.numba_cpu.threads import threads_for

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True)
def _mix(z):
    """SplitMix64's finaliser; every operand is uint64 so the products wrap mod 2^64."""
    z = (z ^ (z >> np.uint64(30))) * _MIX_1
    z = (z ^ (z >> np.uint64(27))) * _MIX_2
    return z ^ (z >> np.uint64(31))


@njit(parallel=True, cache=True)
def _dropout_forward(x, seed, threshold, scale, out, keep):
    for i in prange(x.size):
        # u_i >= rate, compared on the 53-bit integer to spare a conversion.
        kept = (_mix(seed + np.uint64(i + 1) * _GOLDEN) >> np.uint64(11)) >= threshold
        keep[i] = kept
        out[i] = x[i] * scale if kept else x[i] * 0


@njit(parallel=True, cache=True)
def _dropout_backward(grad, keep, scale, out):
    for i in prange(grad.size):
        out[i] = grad[i] * scale if keep[i] else grad[i] * 0


def _threshold(rate):
    """u >= rate for u = k / 2^53 exactly when k >= ceil(rate * 2^53) (the product is
    exact: a power-of-two scaling)."""
    return np.uint64(math.ceil(rate * 2.0**53))


def dropout_forward(x, rate, seed):
    """(y, keep): y = x * keep / (1 - rate); keep is True with probability 1 - rate,
    drawn from the counter-based stream of `seed` (see the module docstring)."""
    out = np.empty(x.shape, dtype=x.dtype)
    keep = np.empty(x.shape, dtype=np.bool_)
    seed = np.uint64(int(seed) % 2**64)
    scale = x.dtype.type(1.0 / (1.0 - rate))
    with threads_for(x.size):
        _dropout_forward(np.ascontiguousarray(x).reshape(-1), seed, _threshold(rate), scale,
                         out.reshape(-1), keep.reshape(-1))
    return out, keep


def dropout_backward(grad, keep, rate):
    """dy/dx = keep / (1 - rate)."""
    out = np.empty(grad.shape, dtype=grad.dtype)
    scale = grad.dtype.type(1.0 / (1.0 - rate))
    with threads_for(grad.size):
        _dropout_backward(np.ascontiguousarray(grad).reshape(-1), np.ascontiguousarray(keep).reshape(-1),
                          scale, out.reshape(-1))
    return out
