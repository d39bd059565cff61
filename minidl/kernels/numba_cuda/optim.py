"""CUDA twins of kernels/reference/optim.py: each optimiser step as one kernel, one
thread per element, one read and one write of every element of the parameter and its
slots (Keras' formulas, see the reference).

The dense forms run over the flattened parameter; the parameter and its slots are
updated in place, so they must be contiguous (they always are: the optimiser made
them). The rows forms give one thread each element of `grad_rows` (k, dim); the rows
are distinct, so no two threads write the same element of the parameter or its slots.
The scalars are cast to the parameter's dtype, so a float32 model steps in float32.
"""
import math

from numba import cuda

from minidl.backend import get_array_module
from minidl.kernels.numba_cuda.launch import flat, flat_in_place, launch


@cuda.jit(device=True)
def _adam_element(param, m, v, at, g, lr_t, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, epsilon):
    # m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  w -= lr_t m / (sqrt(v) + eps)
    m[at] = beta_1 * m[at] + one_minus_beta_1 * g
    v[at] = beta_2 * v[at] + one_minus_beta_2 * g * g
    param[at] -= lr_t * m[at] / (math.sqrt(v[at]) + epsilon)


@cuda.jit
def _adam(param, grad, m, v, lr_t, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, epsilon):
    i = cuda.grid(1)
    if i < param.size:
        _adam_element(param, m, v, i, grad[i], lr_t, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, epsilon)


@cuda.jit
def _adam_rows(param, rows, grad_rows, m, v, lr_t, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, epsilon):
    # Thread i: element (k, column) of grad_rows, element (rows[k], column) of the rest.
    i = cuda.grid(1)
    dim = grad_rows.shape[1]
    if i < grad_rows.size:
        k, column = i // dim, i % dim
        at = rows[k] * dim + column
        _adam_element(param, m, v, at, grad_rows[k, column], lr_t, beta_1, one_minus_beta_1, beta_2,
                      one_minus_beta_2, epsilon)


@cuda.jit(device=True)
def _sgd_element(param, velocity, at, g, lr, momentum, nesterov, with_velocity):
    # v = momentum v - lr g;  w += v  (Nesterov: w += momentum v - lr g);  no velocity: w -= lr g
    if not with_velocity:
        param[at] -= lr * g
        return
    velocity[at] = momentum * velocity[at] - lr * g
    if nesterov:
        param[at] += momentum * velocity[at] - lr * g
    else:
        param[at] += velocity[at]


@cuda.jit
def _sgd(param, grad, velocity, lr, momentum, nesterov, with_velocity):
    i = cuda.grid(1)
    if i < param.size:
        _sgd_element(param, velocity, i, grad[i], lr, momentum, nesterov, with_velocity)


@cuda.jit
def _sgd_rows(param, rows, grad_rows, velocity, lr, momentum, nesterov, with_velocity):
    i = cuda.grid(1)
    dim = grad_rows.shape[1]
    if i < grad_rows.size:
        k, column = i // dim, i % dim
        _sgd_element(param, velocity, rows[k] * dim + column, grad_rows[k, column], lr, momentum, nesterov,
                     with_velocity)


def _adam_scalars(dtype, lr_t, beta_1, beta_2, epsilon):
    cast = dtype.type
    return cast(lr_t), cast(beta_1), cast(1 - beta_1), cast(beta_2), cast(1 - beta_2), cast(epsilon)


def adam_update(param, grad, m, v, lr_t, beta_1, beta_2, epsilon):
    """One Adam step on the whole of `param`, `m` and `v`, in place."""
    launch(_adam, param.size, flat_in_place(param, "adam_update"), flat(grad.astype(param.dtype, copy=False)),
           flat_in_place(m, "adam_update"), flat_in_place(v, "adam_update"),
           *_adam_scalars(param.dtype, lr_t, beta_1, beta_2, epsilon))


def adam_update_rows(param, rows, grad_rows, m, v, lr_t, beta_1, beta_2, epsilon):
    """One Adam step on `rows` of `param`, `m` and `v` only, in place."""
    xp = get_array_module(param)
    launch(_adam_rows, grad_rows.size, flat_in_place(param, "adam_update_rows"), rows.astype(xp.int64),
           xp.ascontiguousarray(grad_rows.astype(param.dtype, copy=False)), flat_in_place(m, "adam_update_rows"),
           flat_in_place(v, "adam_update_rows"), *_adam_scalars(param.dtype, lr_t, beta_1, beta_2, epsilon))


def _sgd_arguments(param, velocity, lr, momentum, nesterov, what):
    """(velocity or a stand-in, lr, momentum, nesterov, with_velocity): without momentum
    there is no velocity, and the kernel is handed a one-element array in its place,
    unused (never the parameter itself: an argument passed twice is two copies under the
    simulator, and the unused one would be written back over the update)."""
    cast = param.dtype.type
    with_velocity = velocity is not None
    if with_velocity:
        velocity = flat_in_place(velocity, what)
    else:
        velocity = get_array_module(param).zeros(1, dtype=param.dtype)
    return velocity, cast(lr), cast(momentum), bool(nesterov), with_velocity


def sgd_update(param, grad, velocity, lr, momentum, nesterov):
    """One SGD step on the whole of `param` (and `velocity`, None when momentum is 0), in place."""
    launch(_sgd, param.size, flat_in_place(param, "sgd_update"), flat(grad.astype(param.dtype, copy=False)),
           *_sgd_arguments(param, velocity, lr, momentum, nesterov, "sgd_update"))


def sgd_update_rows(param, rows, grad_rows, velocity, lr, momentum, nesterov):
    """One SGD step on `rows` of `param` (and of `velocity`, None when momentum is 0) only, in place."""
    xp = get_array_module(param)
    launch(_sgd_rows, grad_rows.size, flat_in_place(param, "sgd_update_rows"), rows.astype(xp.int64),
           xp.ascontiguousarray(grad_rows.astype(param.dtype, copy=False)),
           *_sgd_arguments(param, velocity, lr, momentum, nesterov, "sgd_update_rows"))
