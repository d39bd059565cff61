"""exp, expm1, sigmoid and tanh for Numba loops, from multiplies, adds and selects alone.

Numba turns np.exp, np.expm1 and np.tanh into one libm call per element, which keeps a
loop scalar (3x slower than a vector loop in float64, 10x in float32 here; libm's tanh
alone cost as much as the rest of an LSTM step). These are written so that LLVM
vectorises the loops that call them, as vectorised libms do:

    v = -n ln2 + r with n = round(-v / ln2) and |r| <= ln2/2 (v <= 0), so
    exp(v) = 2^-n (1 + expm1(r)) and expm1(v) = 2^-n expm1(r) + (2^-n - 1);

expm1(r) from its Taylor series and 2^-n exactly from n's binary digits. Each is within
a few ulp of NumPy's in float32 and float64, computed in the input's own precision (all
constants come in its dtype: a Python float would promote float32 arithmetic to
float64). sigmoid and tanh then take one of them each:

    sigmoid(x) = 1 / (1 + e) for x >= 0 and e / (1 + e) below, with e = exp(-|x|) <= 1;
    tanh(x) = sign(x) * -t / (2 + t) with t = expm1(-2|x|), exact near 0 as well.

No branch depends on the data except through selects, and none overflows.
"""
import decimal
import math

import numpy as np
from numba import njit, types
from numba.extending import overload


def _constants(dtype):
    """(taylor, digits, scales, reduction, plain) in `dtype`: the Taylor coefficients 1/k! from
    the highest down to 1/2! (8 terms carry float32's 24 bits over |r| <= ln2/2, 14
    float64's 53); the binary digits of n down to 1 and their scales 2^-digit (n up to
    63 in float32: a seventh digit stops LLVM from vectorising the loop; 1023 in
    float64); the reduction: the lowest input exp computes (it returns exp(lowest) below),
    the lowest expm1 computes (below it expm1 rounds to -1), 1/ln2, ln2 split in a high
    part with few bits (n * high is exact) and the rest (Cody & Waite 1980); and the
    plain numbers 0, 1, 2, 0.2 and 0.5 the functions below need.
    """
    real = np.dtype(dtype).type
    single = np.dtype(dtype) == np.float32
    terms = 8 if single else 14
    taylor = tuple(real(1.0 / math.factorial(k)) for k in range(terms, 1, -1))
    digits = (32, 16, 8, 4, 2, 1) if single else (512, 256, 128, 64, 32, 16, 8, 4, 2, 1)
    # ln2's high part keeps few enough bits that n * high is exact for every n here
    # (11 bits against n < 2^6 in float32, 32 against n < 2^10 in float64); the low part
    # is the rest, from ln2 to 40 digits.
    with decimal.localcontext() as context:
        context.prec = 40
        ln2 = decimal.Decimal(2).ln()
        high_bits = 11 if single else 32
        ln2_high = math.floor(ln2 * 2**high_bits) / 2**high_bits
        ln2_low = float(ln2 - decimal.Decimal(ln2_high))
    reduction = (real(-43.6 if single else -708.0), real(-17.5 if single else -40.0), real(1.0 / math.log(2.0)),
                 real(ln2_high), real(ln2_low))
    plain = tuple(real(c) for c in (0.0, 1.0, 2.0, 0.2, 0.5))
    return (taylor, tuple(real(d) for d in digits), tuple(real(2.0**-d) for d in digits), reduction, plain)


_FLOAT32 = _constants(np.float32)
_FLOAT64 = _constants(np.float64)


def _constants_like(v):
    """The `_constants` of v's dtype, chosen when Numba compiles (see the overload)."""


@overload(_constants_like)
def _constants_like_overload(v):
    # Chosen by type at compile time and baked in as constants: a parallel loop cannot
    # take the tuples as arguments.
    if isinstance(v, types.Float) and v.bitwidth == 32:
        return lambda v: _FLOAT32
    return lambda v: _FLOAT64


@njit(cache=True, error_model="numpy", inline="always")
def _exp_parts(v, lowest):
    """(2^-n, expm1(r)) for v = -n ln2 + r, v <= 0 (clamped below at `lowest`;
    positive v is read as 0): exp(v) = 2^-n (1 + expm1(r))."""
    taylor, digits, scales, reduction, plain = _constants_like(v)
    inv_ln2, ln2_high, ln2_low = reduction[2:]
    zero, one, _, _, half = plain
    u = zero if v > 0 else (lowest if v < lowest else v)
    n = np.floor(half - u * inv_ln2)
    r = (u + n * ln2_high) + n * ln2_low
    p = zero
    for c in taylor:
        p = c + r * p
    expm1_r = r + r * (r * p)
    scale = one
    for digit, digit_scale in zip(digits, scales):
        take = n >= digit
        scale = scale * digit_scale if take else scale
        n = n - digit if take else n
    return scale, expm1_r


@njit(cache=True, error_model="numpy", inline="always")
def expm1_nonpositive(v):
    """expm1(v) for v <= 0 (-1 below -17.5 in float32, -40 in float64; 0 for v > 0,
    so a caller takes its own branch there; NaN passes through)."""
    scale, expm1_r = _exp_parts(v, _constants_like(v)[3][1])
    one = _constants_like(v)[4][1]
    return scale * expm1_r + (scale - one)


@njit(cache=True, error_model="numpy", inline="always")
def exp_nonpositive(v):
    """exp(v) for v <= 0, to a few ulp relative down to -43.6 in float32 (about 1e-19)
    and -708 in float64 (about 3e-308), which it returns below; 1 for v > 0."""
    scale, expm1_r = _exp_parts(v, _constants_like(v)[3][0])
    return scale + scale * expm1_r


@njit(cache=True, error_model="numpy", inline="always")
def sigmoid(x):
    """1 / (1 + e^-x) from e = exp(-|x|) <= 1: no overflow, relative accuracy in both tails."""
    zero, one = _constants_like(x)[4][:2]
    e = exp_nonpositive(-abs(x))
    s = one / (one + e)
    return s if x >= zero else e * s


@njit(cache=True, error_model="numpy", inline="always")
def tanh(x):
    """tanh(x) = sign(x) * -t / (2 + t), t = expm1(-2|x|): accurate for small |x| too."""
    zero, _, two = _constants_like(x)[4][:3]
    t = expm1_nonpositive(-two * abs(x))
    magnitude = -t / (two + t)
    return magnitude if x >= zero else -magnitude


@njit(cache=True, error_model="numpy", inline="always")
def hard_sigmoid(x):
    """Keras 2's hard sigmoid, clip(0.2 x + 0.5, 0, 1)."""
    zero, one, _, fifth, half = _constants_like(x)[4]
    return min(max(x * fifth + half, zero), one)


@njit(cache=True, error_model="numpy", inline="always")
def plain_constants(v):
    """0, 1, 2, 0.2 and 0.5 in v's dtype, for loops whose arithmetic must stay in it."""
    return _constants_like(v)[4]
