"""Embedding lookup and its gradient, a scatter-add of rows."""
from minidl.backend import get_array_module


def embedding_forward(ids, weight):
    """weight[ids]: (..., ) integer ids -> (..., dim)."""
    return weight[ids]


def embedding_backward(grad, ids, vocab_size):
    """d/dweight[v] = sum of grad rows whose id is v: (..., dim) -> (vocab_size, dim)."""
    xp = get_array_module(grad)
    dim = grad.shape[-1]
    grad_weight = xp.zeros((vocab_size, dim), dtype=grad.dtype)
    xp.add.at(grad_weight, ids.reshape(-1), grad.reshape(-1, dim))
    return grad_weight
