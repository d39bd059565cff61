"""CUDA twins of kernels/reference/embedding.py: the gather of rows, its gradient, and
the embedding bag's forward and backward.

Forward, one thread per output element (position or bag, column), reading what it sums.

Backward, a scatter-add of gradient rows into the rows of their ids. Done with
atomicAdd the order of the float additions would depend on thread scheduling, so two
runs with the same seed would differ in the last bits; and a character vocabulary of
~100 ids over batch x length positions makes every row a hot spot. Instead the
positions are sorted by id once (a stable sort), and one thread per (row, column) of the
result gathers its row's gradients in position order: deterministic, free of atomics,
and in the same order as the reference's sequential `add.at`. The bag's backward does
the same over the items of each distinct id.

The sorts, `unique` and `searchsorted` are the array module's (CuPy's on a GPU).
"""
from numba import cuda

from minidl.backend import get_array_module
from minidl.kernels.numba_cuda.launch import launch
from minidl.kernels.reference.embedding import bag_of_items


@cuda.jit
def _gather_rows(ids, weight, out):
    # Thread i: out[position, column] = weight[ids[position], column].
    i = cuda.grid(1)
    dim = weight.shape[1]
    if i < out.size:
        position, column = i // dim, i % dim
        out[position, column] = weight[ids[position], column]


@cuda.jit
def _sum_sorted_rows(grad, order, bounds, zero, grad_weight):
    # Thread i: element (row, column) of grad_weight; bounds[row]..bounds[row + 1] is the
    # run of `order` (positions sorted by id) whose id is `row`.
    i = cuda.grid(1)
    dim = grad_weight.shape[1]
    if i < grad_weight.size:
        row, column = i // dim, i % dim
        total = zero  # of grad's dtype: a float32 gradient sums in float32, as the reference
        for k in range(bounds[row], bounds[row + 1]):
            total += grad[order[k], column]
        grad_weight[row, column] = total


def embedding_forward(ids, weight):
    """weight[ids]: (...,) integer ids -> (..., dim)."""
    xp = get_array_module(weight)
    out = xp.empty((ids.size, weight.shape[1]), dtype=weight.dtype)
    launch(_gather_rows, out.size, xp.ascontiguousarray(ids).reshape(-1), xp.ascontiguousarray(weight), out)
    return out.reshape(ids.shape + (weight.shape[1],))


def _sorted_runs(keys, xp):
    """(order, sorted keys): the positions of `keys` sorted by key, equal keys in
    position order (a stable sort)."""
    order = xp.argsort(keys, kind="stable")
    return order, keys[order]


def embedding_backward(grad, ids, vocab_size):
    """d/dweight[v] = sum of grad rows whose id is v: (..., dim) -> (vocab_size, dim)."""
    xp = get_array_module(grad)
    dim = grad.shape[-1]
    order, sorted_ids = _sorted_runs(ids.reshape(-1).astype(xp.int64), xp)
    bounds = xp.searchsorted(sorted_ids, xp.arange(vocab_size + 1, dtype=xp.int64))  # the run of each id
    grad_weight = xp.empty((vocab_size, dim), dtype=grad.dtype)
    launch(_sum_sorted_rows, grad_weight.size, xp.ascontiguousarray(grad).reshape(-1, dim), order, bounds,
           grad.dtype.type(0), grad_weight)
    return grad_weight


# ------------------------------------------------------------------ embedding bags
@cuda.jit
def _sum_bags(ids, bounds, weight, item_weights, zero, out):
    # Thread i: element (bag, column) of out; bounds[bag]..bounds[bag + 1] are its items.
    i = cuda.grid(1)
    dim = out.shape[1]
    if i < out.size:
        bag, column = i // dim, i % dim
        total = zero
        for j in range(bounds[bag], bounds[bag + 1]):
            total += weight[ids[j], column] * item_weights[j]
        out[bag, column] = total


@cuda.jit
def _sum_sorted_items(grad, order, bag, bounds, item_weights, zero, values):
    # Thread i: element (r, column) of values; bounds[r]..bounds[r + 1] is the run of
    # `order` (items sorted by id) whose id is rows[r].
    i = cuda.grid(1)
    dim = values.shape[1]
    if i < values.size:
        row, column = i // dim, i % dim
        total = zero
        for k in range(bounds[row], bounds[row + 1]):
            j = order[k]
            total += grad[bag[j], column] * item_weights[j]
        values[row, column] = total


def embedding_bag_forward(ids, offsets, weight, item_weights):
    """out[b] = sum over the items j of bag b of item_weights[j] * weight[ids[j]]:
    (n,) ids -> (bags, dim)."""
    xp = get_array_module(weight)
    bounds = xp.concatenate([offsets.astype(xp.int64), xp.asarray([ids.shape[0]], dtype=xp.int64)])
    out = xp.empty((offsets.shape[0], weight.shape[1]), dtype=weight.dtype)
    launch(_sum_bags, out.size, ids.astype(xp.int64), bounds, xp.ascontiguousarray(weight),
           item_weights.astype(weight.dtype), weight.dtype.type(0), out)
    return out


def embedding_bag_backward(grad, ids, offsets, item_weights):
    """(rows, values): the distinct ids in increasing order and the sum of
    item_weights[j] * grad[bag of j] over the items j of each."""
    xp = get_array_module(grad)
    order, sorted_ids = _sorted_runs(ids.astype(xp.int64), xp)
    rows = xp.unique(sorted_ids)
    # Where each distinct id's run starts, and the end of the last run.
    bounds = xp.searchsorted(sorted_ids, xp.concatenate([rows, rows[-1:] + 1]))
    bag = bag_of_items(offsets, ids.shape[0]).astype(xp.int64)
    values = xp.empty((rows.shape[0], grad.shape[1]), dtype=grad.dtype)
    launch(_sum_sorted_items, values.size, xp.ascontiguousarray(grad), order, bag, bounds,
           item_weights.astype(grad.dtype), grad.dtype.type(0), values)
    return rows, values
