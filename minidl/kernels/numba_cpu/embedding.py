"""Numba twins of kernels/reference/embedding.py: the gather of rows and its gradient,
a scatter-add written as a plain loop (NumPy's `np.add.at` is unbuffered and slow).

Threads must never add into the same element at once. Rows of the gradient collide
(the same id appears many times in a batch), columns never do, so the scatter-add is
split across threads by blocks of columns: each thread walks every input row in order
and adds only its own columns. No locks, no private copies of the weight gradient, and
each element is summed in the same order as the reference, so the results are equal
bit for bit.

The embedding bag's forward gives each thread whole bags (each bag writes its own output
row); its backward sums into the distinct ids that NumPy's `unique` finds, split across
threads by columns as above, adding the items in order as the reference does.
"""
import numba
import numpy as np
from numba import njit, prange

from minidl.kernels.numba_cpu.threads import threads_for
from minidl.kernels.reference.embedding import bag_of_items


@njit(cache=True)
def _gather_rows(ids, weight, out):
    # One thread: a row is a short copy (dim 32 in the URL models), and splitting the
    # gather across threads measured slower than copying on one.
    for n in range(ids.size):
        row = ids[n]
        for d in range(weight.shape[1]):
            out[n, d] = weight[row, d]


@njit(parallel=True, cache=True)
def _scatter_add_rows(grad, ids, blocks, grad_weight):
    rows, dim = grad.shape
    width = (dim + blocks - 1) // blocks
    for block in prange(blocks):
        start = block * width
        stop = min(start + width, dim)
        for n in range(rows):
            row = ids[n]
            for d in range(start, stop):
                grad_weight[row, d] += grad[n, d]


def embedding_forward(ids, weight):
    """weight[ids]: (...,) integer ids -> (..., dim)."""
    out = np.empty((ids.size, weight.shape[1]), dtype=weight.dtype)
    _gather_rows(np.ascontiguousarray(ids).reshape(-1), np.ascontiguousarray(weight), out)
    return out.reshape(ids.shape + (weight.shape[1],))


def embedding_backward(grad, ids, vocab_size):
    """d/dweight[v] = sum of grad rows whose id is v: (..., dim) -> (vocab_size, dim)."""
    dim = grad.shape[-1]
    grad_weight = np.zeros((vocab_size, dim), dtype=grad.dtype)
    with threads_for(grad.size):
        blocks = max(1, min(numba.get_num_threads(), dim))
        _scatter_add_rows(np.ascontiguousarray(grad).reshape(-1, dim), np.ascontiguousarray(ids).reshape(-1),
                          blocks, grad_weight)
    return grad_weight


@njit(parallel=True, cache=True)
def _sum_bags(ids, offsets, weight, item_weights, out):
    bags, dim = out.shape
    for b in prange(bags):
        stop = offsets[b + 1] if b + 1 < bags else ids.size
        for j in range(offsets[b], stop):
            row = ids[j]
            for d in range(dim):
                out[b, d] += weight[row, d] * item_weights[j]


@njit(parallel=True, cache=True)
def _sum_items_into_rows(grad, bag, inverse, item_weights, blocks, values):
    dim = grad.shape[1]
    width = (dim + blocks - 1) // blocks
    for block in prange(blocks):
        start = block * width
        stop = min(start + width, dim)
        for j in range(inverse.size):
            for d in range(start, stop):
                values[inverse[j], d] += grad[bag[j], d] * item_weights[j]


def embedding_bag_forward(ids, offsets, weight, item_weights):
    """out[b] = sum over the items j of bag b of item_weights[j] * weight[ids[j]]:
    (n,) ids -> (bags, dim)."""
    out = np.zeros((offsets.shape[0], weight.shape[1]), dtype=weight.dtype)
    with threads_for(ids.size * weight.shape[1]):
        _sum_bags(np.ascontiguousarray(ids), np.ascontiguousarray(offsets), np.ascontiguousarray(weight),
                  np.ascontiguousarray(item_weights, dtype=weight.dtype), out)
    return out


def embedding_bag_backward(grad, ids, offsets, item_weights):
    """(rows, values): the distinct ids in increasing order and the sum of
    item_weights[j] * grad[bag of j] over the items j of each."""
    rows, inverse = np.unique(ids, return_inverse=True)
    values = np.zeros((rows.shape[0], grad.shape[1]), dtype=grad.dtype)
    with threads_for(ids.size * grad.shape[1]):
        blocks = max(1, min(numba.get_num_threads(), grad.shape[1]))
        _sum_items_into_rows(np.ascontiguousarray(grad), bag_of_items(offsets, ids.shape[0]), inverse.reshape(-1),
                             np.ascontiguousarray(item_weights, dtype=grad.dtype), blocks, values)
    return rows, values
