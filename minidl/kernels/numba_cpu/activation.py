"""Numba twins of kernels/reference/activation.py: relu and elu, forward and backward,
each one pass over memory.

The NumPy versions build one or two temporaries per call (the boolean mask, the expm1
of the clipped input, the `where`); here each element is read and written once. The
loops run over the flattened arrays (a contiguous copy is made first only when an input
is not contiguous) and are split across threads with `prange`: these arrays are large
in the URL models (batch x 75 x 256 after a convolution); small ones run on one thread
(see threads.py).
"""
import numpy as np
from numba import njit, prange

from minidl.kernels.numba_cpu.threads import threads_for
from minidl.kernels.numba_cpu.vector_math import expm1_nonpositive


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


@njit(parallel=True, cache=True)
def _elu_forward(x, alpha, out):
    for i in prange(x.size):
        v = x[i]
        out[i] = v if v > 0 else alpha * expm1_nonpositive(v)


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
