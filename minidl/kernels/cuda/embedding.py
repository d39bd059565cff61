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
"""
import cupy

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
