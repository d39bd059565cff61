"""The optimisers' update rules as in-place kernels, Keras' formulas (minidl.optim).

Each rule comes in two forms: dense, on a whole parameter and its gradient, and on rows,
for a gradient that holds only some rows of a matrix (IndexedSlices from an embedding
bag): `rows` (k,) distinct row numbers and `grad_rows` (k, dim) their gradient; only
those rows of the parameter and of its slots change. The dense form is written as the
optimisers always did, one NumPy operation after another; the Numba and CuPy twins do
the whole update in one pass over each element.

    Adam  m = beta_1 m + (1 - beta_1) g;  v = beta_2 v + (1 - beta_2) g^2;
          w -= lr_t m / (sqrt(v) + epsilon)      (lr_t with the bias correction folded in)
    SGD   v = momentum v - lr g;  w += v  (Nesterov: w += momentum v - lr g);
          momentum 0: w -= lr g, and no velocity
"""
from minidl.backend import get_array_module


def adam_update(param, grad, m, v, lr_t, beta_1, beta_2, epsilon):
    """One Adam step on the whole of `param`, `m` and `v`, in place."""
    xp = get_array_module(param)
    m *= beta_1
    m += (1 - beta_1) * grad
    v *= beta_2
    v += (1 - beta_2) * grad * grad
    param -= (lr_t * m / (xp.sqrt(v) + epsilon)).astype(param.dtype, copy=False)


def adam_update_rows(param, rows, grad_rows, m, v, lr_t, beta_1, beta_2, epsilon):
    """One Adam step on `rows` of `param`, `m` and `v` only, in place (TensorFlow's
    LazyAdam: the other rows and their moments stay as they are)."""
    xp = get_array_module(param)
    m_rows = beta_1 * m[rows] + (1 - beta_1) * grad_rows
    v_rows = beta_2 * v[rows] + (1 - beta_2) * grad_rows * grad_rows
    m[rows], v[rows] = m_rows, v_rows
    param[rows] -= (lr_t * m_rows / (xp.sqrt(v_rows) + epsilon)).astype(param.dtype, copy=False)


def sgd_update(param, grad, velocity, lr, momentum, nesterov):
    """One SGD step on the whole of `param` (and `velocity`, None when momentum is 0), in place."""
    if velocity is None:
        param -= lr * grad
        return
    velocity *= momentum
    velocity -= lr * grad
    if nesterov:
        param += momentum * velocity - lr * grad
    else:
        param += velocity


def sgd_update_rows(param, rows, grad_rows, velocity, lr, momentum, nesterov):
    """One SGD step on `rows` of `param` (and of `velocity`, None when momentum is 0) only, in place."""
    if velocity is None:
        param[rows] -= lr * grad_rows
        return
    velocity_rows = momentum * velocity[rows] - lr * grad_rows
    velocity[rows] = velocity_rows
    param[rows] += momentum * velocity_rows - lr * grad_rows if nesterov else velocity_rows
