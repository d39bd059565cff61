"""Numba twins of kernels/reference/optim.py: each optimiser step in one pass over the
elements (Adam reads the gradient and both moments once and writes the moments and the
parameter once, where the NumPy form makes seven passes and three temporaries).

The scalars are cast to the parameter's dtype first, so float32 arithmetic here rounds
as NumPy's float32 operations do and the twins agree bit for bit (no fastmath, no fused
multiply-add). Parameters and slots are contiguous (the optimisers make them so);
elements, or rows, are split across threads, none of which touch the same element.
"""
import numpy as np
from numba import njit, prange

from minidl.kernels.numba_cpu.threads import threads_for


@njit(parallel=True, cache=True, error_model="numpy")
def _adam(param, grad, m, v, lr_t, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, epsilon):
    for i in prange(param.size):
        g = grad[i]
        m[i] = beta_1 * m[i] + one_minus_beta_1 * g
        v[i] = beta_2 * v[i] + one_minus_beta_2 * g * g
        param[i] -= lr_t * m[i] / (np.sqrt(v[i]) + epsilon)


@njit(parallel=True, cache=True, error_model="numpy")
def _adam_rows(param, rows, grad_rows, m, v, lr_t, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, epsilon):
    for k in prange(rows.size):
        row = rows[k]
        for d in range(param.shape[1]):
            g = grad_rows[k, d]
            m[row, d] = beta_1 * m[row, d] + one_minus_beta_1 * g
            v[row, d] = beta_2 * v[row, d] + one_minus_beta_2 * g * g
            param[row, d] -= lr_t * m[row, d] / (np.sqrt(v[row, d]) + epsilon)


@njit(parallel=True, cache=True, error_model="numpy")
def _sgd(param, grad, lr):
    for i in prange(param.size):
        param[i] -= lr * grad[i]


@njit(parallel=True, cache=True, error_model="numpy")
def _sgd_momentum(param, grad, velocity, lr, momentum, nesterov):
    for i in prange(param.size):
        g = grad[i]
        velocity[i] = momentum * velocity[i] - lr * g
        param[i] += momentum * velocity[i] - lr * g if nesterov else velocity[i]


@njit(parallel=True, cache=True, error_model="numpy")
def _sgd_rows(param, rows, grad_rows, lr):
    for k in prange(rows.size):
        for d in range(param.shape[1]):
            param[rows[k], d] -= lr * grad_rows[k, d]


@njit(parallel=True, cache=True, error_model="numpy")
def _sgd_momentum_rows(param, rows, grad_rows, velocity, lr, momentum, nesterov):
    for k in prange(rows.size):
        row = rows[k]
        for d in range(param.shape[1]):
            g = grad_rows[k, d]
            velocity[row, d] = momentum * velocity[row, d] - lr * g
            param[row, d] += momentum * velocity[row, d] - lr * g if nesterov else velocity[row, d]


def _flat(array):
    """A writable flat view of a parameter or slot (never a copy, or the update is lost)."""
    if not array.flags.c_contiguous:
        raise ValueError("optim kernels: parameters and optimiser slots must be C-contiguous arrays")
    return array.reshape(-1)


def _read(grad, dtype):
    return np.ascontiguousarray(grad, dtype=dtype).reshape(-1)


def _adam_scalars(dtype, lr_t, beta_1, beta_2, epsilon):
    cast = np.dtype(dtype).type
    return cast(lr_t), cast(beta_1), cast(1 - beta_1), cast(beta_2), cast(1 - beta_2), cast(epsilon)


def adam_update(param, grad, m, v, lr_t, beta_1, beta_2, epsilon):
    """One Adam step on the whole of `param`, `m` and `v`, in place."""
    with threads_for(param.size):
        _adam(_flat(param), _read(grad, param.dtype), _flat(m), _flat(v),
              *_adam_scalars(param.dtype, lr_t, beta_1, beta_2, epsilon))


def adam_update_rows(param, rows, grad_rows, m, v, lr_t, beta_1, beta_2, epsilon):
    """One Adam step on `rows` of `param`, `m` and `v` only, in place."""
    with threads_for(grad_rows.size):
        _adam_rows(param, np.ascontiguousarray(rows), np.ascontiguousarray(grad_rows, dtype=param.dtype), m, v,
                   *_adam_scalars(param.dtype, lr_t, beta_1, beta_2, epsilon))


def sgd_update(param, grad, velocity, lr, momentum, nesterov):
    """One SGD step on the whole of `param` (and `velocity`, None when momentum is 0), in place."""
    cast = param.dtype.type
    with threads_for(param.size):
        if velocity is None:
            _sgd(_flat(param), _read(grad, param.dtype), cast(lr))
        else:
            _sgd_momentum(_flat(param), _read(grad, param.dtype), _flat(velocity), cast(lr), cast(momentum),
                          bool(nesterov))


def sgd_update_rows(param, rows, grad_rows, velocity, lr, momentum, nesterov):
    """One SGD step on `rows` of `param` (and of `velocity`, None when momentum is 0) only, in place."""
    cast = param.dtype.type
    rows, grad_rows = np.ascontiguousarray(rows), np.ascontiguousarray(grad_rows, dtype=param.dtype)
    with threads_for(grad_rows.size):
        if velocity is None:
            _sgd_rows(param, rows, grad_rows, cast(lr))
        else:
            _sgd_momentum_rows(param, rows, grad_rows, velocity, cast(lr), cast(momentum), bool(nesterov))
