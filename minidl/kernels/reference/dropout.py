"""Inverted dropout: keep each element with probability 1 - rate, scale kept ones by
1 / (1 - rate), so inference needs no rescaling."""
from minidl.backend import get_array_module


def dropout_forward(x, rate, seed):
    """(y, keep): y = x * keep / (1 - rate), keep = default_rng(seed).random(x.shape,
    dtype=x.dtype) >= rate: NumPy's stream for the seed (CuPy's on CuPy arrays)."""
    xp = get_array_module(x)
    keep = xp.random.default_rng(seed).random(x.shape, dtype=x.dtype) >= rate
    return x * keep * x.dtype.type(1.0 / (1.0 - rate)), keep


def dropout_backward(grad, keep, rate):
    """dy/dx = keep / (1 - rate)."""
    return grad * keep * grad.dtype.type(1.0 / (1.0 - rate))
