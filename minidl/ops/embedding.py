"""Embedding: integer ids -> rows of a weight matrix."""
from minidl.autograd import Function, Tensor, as_tensor
from minidl.backend import get_array_module, to_numpy
from minidl.kernels import get_kernel


class Embedding(Function):
    """out[..., :] = weight[ids[...], :]; d/dweight[v] = sum of the output gradients at
    the positions whose id is v (a scatter-add)."""

    @staticmethod
    def forward(ctx, ids, weight):
        ctx.save(ids)
        ctx.vocab_size = weight.shape[0]
        return get_kernel("embedding", "embedding_forward", weight)(ids, weight)

    @staticmethod
    def backward(ctx, grad):
        (ids,) = ctx.saved
        return None, get_kernel("embedding", "embedding_backward", grad)(grad, ids, ctx.vocab_size)


def embedding(ids, weight):
    """Look up rows of `weight` (vocab, dim) for integer `ids` (...) -> (..., dim)."""
    weight = as_tensor(weight)
    ids = ids.data if isinstance(ids, Tensor) else ids
    xp = get_array_module(weight.data)
    ids = xp.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {ids.dtype}")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be (vocabulary, dim), got shape {weight.shape}")
    if ids.size:
        # one transfer for both bounds (each int() of a CuPy scalar is a device sync)
        low, high = (int(v) for v in to_numpy(xp.stack([ids.min(), ids.max()])))
        if low < 0 or high >= weight.shape[0]:
            bad = high if high >= weight.shape[0] else low
            raise ValueError(f"embedding: index {bad} is out of the vocabulary of {weight.shape[0]} (valid ids 0..{weight.shape[0] - 1})")
    return Embedding.apply(Tensor(ids), weight)
