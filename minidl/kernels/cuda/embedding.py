"""CuPy twin of the embedding gradient in kernels/reference/embedding.py.

The forward lookup `weight[ids]` has no twin here: on CuPy arrays the reference's
indexing already runs as one gather kernel, so the dispatcher's fallback serves it.

The backward is a scatter-add of gradient rows into the rows of their ids. Done with
atomicAdd (as `cupy.add.at` does) the order of the float additions would depend on
thread scheduling, so two runs with the same seed would differ in the last bits; and a
character vocabulary of ~100 ids over batch x length positions makes every row a hot
spot. Instead the positions are sorted by id once (a stable sort), and one thread per
(row, column) of the result sums its row's gradients in position order: deterministic,
free of atomics, and in the same order as the reference's sequential `add.at`.

The embedding bag works the same way: its forward gives one thread each (bag, column)
of the output, which walks the bag's items in order; its backward sorts the items by id
(stably) and gives one thread each (distinct id, column), which walks that id's items in
order. No atomics, the reference's order of additions.
"""
import cupy

from minidl.kernels.reference.embedding import bag_of_items

# One thread per element (row, column) of grad_weight; bounds[row]..bounds[row + 1] is
# the run of `order` (positions sorted by id) whose id is `row`.
_sum_sorted_rows = cupy.ElementwiseKernel(
    "raw T grad, raw int64 order, raw int64 bounds, int64 dim", "T grad_weight",
    """
    const long long row = i / dim, column = i % dim;
    T total = 0;
    for (long long k = bounds[row]; k < bounds[row + 1]; ++k) {
        total += grad[order[k] * dim + column];
    }
    grad_weight = total;
    """,
    "minidl_embedding_backward",
)


def embedding_backward(grad, ids, vocab_size):
    """d/dweight[v] = sum of grad rows whose id is v: (..., dim) -> (vocab_size, dim)."""
    dim = grad.shape[-1]
    flat_ids = ids.reshape(-1).astype(cupy.int64, copy=False)
    order = cupy.argsort(flat_ids)  # CuPy's argsort is stable: equal ids keep position order
    bounds = cupy.searchsorted(flat_ids[order], cupy.arange(vocab_size + 1, dtype=cupy.int64))
    grad_weight = cupy.empty((vocab_size, dim), dtype=grad.dtype)
    rows = cupy.ascontiguousarray(grad).reshape(-1, dim)
    return _sum_sorted_rows(rows, order.astype(cupy.int64, copy=False), bounds.astype(cupy.int64, copy=False), dim, grad_weight)


# One thread per element (bag, column) of the output; bounds[bag]..bounds[bag + 1] are its items.
_sum_bags = cupy.ElementwiseKernel(
    "raw int64 ids, raw int64 bounds, raw T weight, raw T item_weights, int64 dim", "T out",
    """
    const long long bag = i / dim, column = i % dim;
    T total = 0;
    for (long long j = bounds[bag]; j < bounds[bag + 1]; ++j) {
        total += weight[ids[j] * dim + column] * item_weights[j];
    }
    out = total;
    """,
    "minidl_embedding_bag_forward",
)

# One thread per element (distinct id, column); bounds[row]..bounds[row + 1] is the run of
# `order` (items sorted by id) whose id is rows[row].
_sum_sorted_items = cupy.ElementwiseKernel(
    "raw T grad, raw int64 order, raw int64 bag, raw int64 bounds, raw T item_weights, int64 dim", "T values",
    """
    const long long row = i / dim, column = i % dim;
    T total = 0;
    for (long long k = bounds[row]; k < bounds[row + 1]; ++k) {
        const long long j = order[k];
        total += grad[bag[j] * dim + column] * item_weights[j];
    }
    values = total;
    """,
    "minidl_embedding_bag_backward",
)


def embedding_bag_forward(ids, offsets, weight, item_weights):
    """out[b] = sum over the items j of bag b of item_weights[j] * weight[ids[j]]:
    (n,) ids -> (bags, dim)."""
    dim = weight.shape[1]
    bounds = cupy.concatenate([offsets, cupy.asarray([ids.shape[0]])]).astype(cupy.int64)
    out = cupy.empty((offsets.shape[0], dim), dtype=weight.dtype)
    return _sum_bags(ids.astype(cupy.int64), bounds, cupy.ascontiguousarray(weight),
                     item_weights.astype(weight.dtype), dim, out)


def embedding_bag_backward(grad, ids, offsets, item_weights):
    """(rows, values): the distinct ids in increasing order and the sum of
    item_weights[j] * grad[bag of j] over the items j of each."""
    dim = grad.shape[1]
    ids = ids.astype(cupy.int64)
    order = cupy.argsort(ids)  # stable: the items of one id keep their order
    sorted_ids = ids[order]
    rows = cupy.unique(sorted_ids)
    bounds = cupy.searchsorted(sorted_ids, cupy.concatenate([rows, rows[-1:] + 1]))  # each id's run, and the end
    bag = bag_of_items(offsets, ids.shape[0])
    values = cupy.empty((rows.shape[0], dim), dtype=grad.dtype)
    return rows, _sum_sorted_items(cupy.ascontiguousarray(grad), order.astype(cupy.int64), bag.astype(cupy.int64),
                                   bounds.astype(cupy.int64), item_weights.astype(grad.dtype), dim, values)
