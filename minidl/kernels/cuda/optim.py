"""CuPy twins of kernels/reference/optim.py: each optimiser step as one elementwise
kernel (one read and one write of every element of the parameter and its slots).

The rows forms give one thread each element of `grad_rows` (k, dim); the rows are
distinct, so no two threads write the same element of the parameter or its slots.
"""
import cupy

_adam = cupy.ElementwiseKernel(
    "T grad, T lr_t, T beta_1, T one_minus_beta_1, T beta_2, T one_minus_beta_2, T epsilon",
    "T param, T m, T v",
    """
    m = beta_1 * m + one_minus_beta_1 * grad;
    v = beta_2 * v + one_minus_beta_2 * grad * grad;
    param -= lr_t * m / (sqrt(v) + epsilon);
    """,
    "minidl_adam_update",
)

_adam_rows = cupy.ElementwiseKernel(
    "raw int64 rows, T grad_rows, T lr_t, T beta_1, T one_minus_beta_1, T beta_2, T one_minus_beta_2, "
    "T epsilon, int64 dim",
    "raw T param, raw T m, raw T v",
    """
    const long long at = rows[i / dim] * dim + i % dim;
    m[at] = beta_1 * m[at] + one_minus_beta_1 * grad_rows;
    v[at] = beta_2 * v[at] + one_minus_beta_2 * grad_rows * grad_rows;
    param[at] -= lr_t * m[at] / (sqrt(v[at]) + epsilon);
    """,
    "minidl_adam_update_rows",
)

_sgd = cupy.ElementwiseKernel("T grad, T lr", "T param", "param -= lr * grad;", "minidl_sgd_update")

_sgd_momentum = cupy.ElementwiseKernel(
    "T grad, T lr, T momentum, bool nesterov", "T param, T velocity",
    """
    velocity = momentum * velocity - lr * grad;
    param += nesterov ? momentum * velocity - lr * grad : velocity;
    """,
    "minidl_sgd_momentum_update",
)

_sgd_rows = cupy.ElementwiseKernel(
    "raw int64 rows, T grad_rows, T lr, int64 dim", "raw T param",
    "param[rows[i / dim] * dim + i % dim] -= lr * grad_rows;",
    "minidl_sgd_update_rows",
)

_sgd_momentum_rows = cupy.ElementwiseKernel(
    "raw int64 rows, T grad_rows, T lr, T momentum, bool nesterov, int64 dim", "raw T param, raw T velocity",
    """
    const long long at = rows[i / dim] * dim + i % dim;
    velocity[at] = momentum * velocity[at] - lr * grad_rows;
    param[at] += nesterov ? momentum * velocity[at] - lr * grad_rows : velocity[at];
    """,
    "minidl_sgd_momentum_update_rows",
)


def _adam_scalars(dtype, lr_t, beta_1, beta_2, epsilon):
    cast = cupy.dtype(dtype).type
    return cast(lr_t), cast(beta_1), cast(1 - beta_1), cast(beta_2), cast(1 - beta_2), cast(epsilon)


def adam_update(param, grad, m, v, lr_t, beta_1, beta_2, epsilon):
    """One Adam step on the whole of `param`, `m` and `v`, in place."""
    _adam(grad.astype(param.dtype, copy=False), *_adam_scalars(param.dtype, lr_t, beta_1, beta_2, epsilon),
          param, m, v)


def adam_update_rows(param, rows, grad_rows, m, v, lr_t, beta_1, beta_2, epsilon):
    """One Adam step on `rows` of `param`, `m` and `v` only, in place."""
    _adam_rows(rows.astype(cupy.int64, copy=False), grad_rows.astype(param.dtype, copy=False),
               *_adam_scalars(param.dtype, lr_t, beta_1, beta_2, epsilon), param.shape[1], param, m, v)


def sgd_update(param, grad, velocity, lr, momentum, nesterov):
    """One SGD step on the whole of `param` (and `velocity`, None when momentum is 0), in place."""
    cast, grad = param.dtype.type, grad.astype(param.dtype, copy=False)
    if velocity is None:
        _sgd(grad, cast(lr), param)
    else:
        _sgd_momentum(grad, cast(lr), cast(momentum), bool(nesterov), param, velocity)


def sgd_update_rows(param, rows, grad_rows, velocity, lr, momentum, nesterov):
    """One SGD step on `rows` of `param` (and of `velocity`, None when momentum is 0) only, in place."""
    cast = param.dtype.type
    rows, grad_rows = rows.astype(cupy.int64, copy=False), grad_rows.astype(param.dtype, copy=False)
    if velocity is None:
        _sgd_rows(rows, grad_rows, cast(lr), param.shape[1], param)
    else:
        _sgd_momentum_rows(rows, grad_rows, cast(lr), cast(momentum), bool(nesterov), param.shape[1], param, velocity)
