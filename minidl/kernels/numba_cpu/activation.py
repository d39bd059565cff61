"""Numba twins of kernels/reference/activation.py: relu and elu, forward and backward,
each one pass over memory.

The NumPy versions build one or two temporaries per call (the boolean mask, the expm1
of the clipped input, the `where`); here each element is read and written once. The
loops run over the flattened arrays (a contiguous copy is made first only when an input
is not contiguous) and are split across threads with `prange`: these arrays are large
in the URL models (batch x 75 x 256 after a convolution); small ones run on one thread
(see threads.py).
"""
import math

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from minidl.kernels.numba_cpu.threads import threads_for


def _flat(array):
    return np.ascontiguousarray(array).reshape(-1)


@njit(parallel=True, cache=True)
def _relu_forward(x, out):
    for i in prange(x.size):
        v = x[i]
        # `v <= 0` is False for NaN, so NaN passes through as in np.maximum(x, 0).
        out[i] = 0 if v <= 0 else v


@njit(parallel=True, cache=True)
def _relu_backward(grad, x, out):
    for i in prange(x.size):
        # A product rather than a branch, so a NaN gradient stays NaN as in the reference.
        out[i] = grad[i] * (1 if x[i] > 0 else 0)


def _expm1_constants(dtype):
    """The constants of `_expm1_nonpositive` in `dtype`, so that float32 data is computed
    in float32 (twice the SIMD lanes of float64) and float64 data in float64.

    (taylor, digits, scales, reduction): the Taylor coefficients 1/k! from the highest
    down to 1/2! (8 terms carry float32's 24 bits over |r| <= ln2/2, 14 float64's 53);
    the binary digits 32, 16, ..., 1 of n and their scales 2^-32, ..., 2^-1; and the
    lowest input worth computing (below it expm1 rounds to -1), 1/ln2, ln2 split in a
    high part with few bits (n * high is exact) and the rest (Cody & Waite 1980), 1/2,
    1 and 0.
    """
    real = np.dtype(dtype).type
    single = np.dtype(dtype) == np.float32
    terms = 8 if single else 14
    taylor = tuple(real(1.0 / math.factorial(k)) for k in range(terms, 1, -1))
    digits = (32, 16, 8, 4, 2, 1)
    ln2_high = 0.693359375
    reduction = (real(-17.5 if single else -40.0), real(1.0 / math.log(2.0)), real(ln2_high),
                 real(math.log(2.0) - ln2_high), real(0.5), real(1.0), real(0.0))
    return (taylor, tuple(real(d) for d in digits), tuple(real(2.0**-d) for d in digits), reduction)


_EXPM1_FLOAT32 = _expm1_constants(np.float32)
_EXPM1_FLOAT64 = _expm1_constants(np.float64)


def _expm1_constants_like(v):
    """The `_expm1_constants` of v's dtype, chosen when Numba compiles (see the overload)."""


@overload(_expm1_constants_like)
def _expm1_constants_like_overload(v):
    # Chosen by type at compile time and baked in as constants: a parallel loop cannot
    # take the tuples as arguments.
    if isinstance(v, types.Float) and v.bitwidth == 32:
        return lambda v: _EXPM1_FLOAT32
    return lambda v: _EXPM1_FLOAT64


@njit(cache=True)
def _expm1_nonpositive(v):
    """expm1(v) for v <= 0 from multiplies, adds and selects alone, in v's precision.

    Numba turns np.expm1 into a libm call per element, which keeps the loop scalar
    (3x slower in float64, 10x in float32 here). Instead, as vectorised libms do:
    v = -n ln2 + r with n = round(-v / ln2) and |r| <= ln2/2, so
    expm1(v) = 2^-n expm1(r) + (2^-n - 1); expm1(r) from its Taylor series, 2^-n exactly
    from n's binary digits. Within 1 ulp of np.expm1 in float32 and float64. Inputs
    below -17.5 (float32) or -40 (float64) give -1, as expm1 rounds there; positive v
    gives 0 (the caller takes the other branch); NaN passes through. Every constant
    comes in v's dtype (see `_expm1_constants`): a Python float would promote float32
    arithmetic to float64.
    """
    taylor, digits, scales, reduction = _expm1_constants_like(v)
    lowest, inv_ln2, ln2_high, ln2_low, half, one, zero = reduction
    u = zero if v > 0 else (lowest if v < lowest else v)
    n = np.floor(half - u * inv_ln2)
    r = (u + n * ln2_high) + n * ln2_low
    p = zero
    for c in taylor:
        p = c + r * p
    expm1_r = r + r * (r * p)
    scale = one
    for i in range(len(digits)):
        take = n >= digits[i]
        scale = scale * scales[i] if take else scale
        n = n - digits[i] if take else n
    return scale * expm1_r + (scale - one)


@njit(parallel=True, cache=True)
def _elu_forward(x, alpha, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = v if v > 0 else alpha * _expm1_nonpositive(v)


@njit(parallel=True, cache=True)
def _elu_backward(grad, x, out, alpha, grad_in):
    for i in prange(x.size):
        grad_in[i] = grad[i] if x[i] > 0 else grad[i] * (out[i] + alpha)


def relu_forward(x):
    out = np.empty(x.shape, dtype=x.dtype)
    with threads_for(x.size):
        _relu_forward(_flat(x), out.reshape(-1))
    return out


def relu_backward(grad, x):
    """d relu(x)/dx = 1 where x > 0."""
    out = np.empty(grad.shape, dtype=grad.dtype)
    with threads_for(grad.size):
        _relu_backward(_flat(grad), _flat(x), out.reshape(-1))
    return out


def elu_forward(x, alpha):
    """x where x > 0, alpha * (exp(x) - 1) elsewhere."""
    out = np.empty(x.shape, dtype=x.dtype)
    with threads_for(x.size):
        _elu_forward(_flat(x), x.dtype.type(alpha), out.reshape(-1))
    return out


def elu_backward(grad, x, out, alpha):
    """d elu(x)/dx = 1 where x > 0, elu(x) + alpha elsewhere."""
    grad_in = np.empty(grad.shape, dtype=grad.dtype)
    with threads_for(grad.size):
        _elu_backward(_flat(grad), _flat(x), _flat(out), out.dtype.type(alpha), grad_in.reshape(-1))
    return grad_in
