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


# ------------------------------------------------------------------ embedding bags
# A batch of bags is stored flat, as PyTorch's EmbeddingBag takes it: `ids` (n,) every
# bag's ids end to end, `offsets` (bags,) where each bag starts (non-decreasing, the
# first 0; a bag may be empty), and `item_weights` (n,) a factor for each id (1 for a
# plain sum, 1 / bag size for a mean, or the caller's per-id weights).
def bag_of_items(offsets, n_items):
    """The bag of every item: (n_items,) int64; item j is in the last bag starting at or
    before j (so empty bags, which share their offset with the next one, get none)."""
    xp = get_array_module(offsets)
    return xp.searchsorted(offsets, xp.arange(n_items), side="right") - 1


def embedding_bag_forward(ids, offsets, weight, item_weights):
    """out[b] = sum over the items j of bag b of item_weights[j] * weight[ids[j]]:
    (n,) ids -> (bags, dim). Items are added in order."""
    xp = get_array_module(weight)
    out = xp.zeros((offsets.shape[0], weight.shape[1]), dtype=weight.dtype)
    xp.add.at(out, bag_of_items(offsets, ids.shape[0]), weight[ids] * item_weights[:, None])
    return out


def embedding_bag_backward(grad, ids, offsets, item_weights):
    """d/dweight of the bags, as the rows it touches: (rows (k,) the distinct ids in
    increasing order, values (k, dim)) with values[r] = sum over the items j whose id is
    rows[r] of item_weights[j] * grad[bag of j], added in item order."""
    xp = get_array_module(grad)
    rows, inverse = xp.unique(ids, return_inverse=True)
    values = xp.zeros((rows.shape[0], grad.shape[1]), dtype=grad.dtype)
    xp.add.at(values, inverse.reshape(-1), grad[bag_of_items(offsets, ids.shape[0])] * item_weights[:, None])
    return rows, values
