"""Embedding: integer ids -> rows of a weight matrix; embedding bags: the sum or mean of
several rows per sample, with a gradient that holds only the rows used."""
from minidl.autograd import Function, Tensor, as_tensor
from minidl.backend import get_array_module, to_numpy
from minidl.kernels import get_kernel
from minidl.kernels.reference.embedding import bag_of_items
from minidl.sparse import IndexedSlices


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
    _check_vocabulary(ids, weight.shape[0], xp, "embedding")
    return Embedding.apply(Tensor(ids), weight)


def _check_vocabulary(ids, vocabulary, xp, op_name):
    if ids.size:
        # one transfer for both bounds (each int() of a CuPy scalar is a device sync)
        low, high = (int(v) for v in to_numpy(xp.stack([ids.min(), ids.max()])))
        if low < 0 or high >= vocabulary:
            bad = high if high >= vocabulary else low
            raise ValueError(f"{op_name}: index {bad} is out of the vocabulary of {vocabulary} "
                             f"(valid ids 0..{vocabulary - 1})")


class EmbeddingBag(Function):
    """out[b] = sum over the items j of bag b of item_weights[j] * weight[ids[j]];
    d/dweight[v] = sum over the items j with ids[j] = v of item_weights[j] * grad[bag of j],
    returned as IndexedSlices over the distinct ids (never a dense (vocabulary, dim) array)."""

    @staticmethod
    def forward(ctx, weight, ids, offsets, item_weights):
        ctx.save(ids, offsets, item_weights)
        ctx.weight_shape = weight.shape
        return get_kernel("embedding", "embedding_bag_forward", weight)(ids, offsets, weight, item_weights)

    @staticmethod
    def backward(ctx, grad):
        ids, offsets, item_weights = ctx.saved
        rows, values = get_kernel("embedding", "embedding_bag_backward", grad)(grad, ids, offsets, item_weights)
        return IndexedSlices(rows, values, ctx.weight_shape)


BAG_MODES = ("sum", "mean")


def embedding_bag(ids, weight, offsets=None, mask=None, per_sample_weights=None, mode="mean"):
    """The sum or mean of the embedding rows of each sample's ids (PyTorch's EmbeddingBag).

    Two layouts, as PyTorch takes them:
      padded  ids (batch, length); `mask` (batch, length) marks the ids that count
              (nonzero) and defaults to all of them;
      flat    ids (n,) every sample's ids end to end and `offsets` (batch,) where each
              sample starts (the first 0, non-decreasing; equal offsets make empty bags).
    weight (vocabulary, dim) -> (batch, dim). mode "sum" or "mean" (an empty bag gives
    zeros). per_sample_weights (the shape of ids, mode "sum" only) multiply each id's row;
    they are data, like ids and mask: no gradient flows to them.

    The gradient of `weight` is an IndexedSlices over the ids the batch used, so a
    2^18-row table costs a step only its touched rows (the optimisers update only those).
    """
    weight = as_tensor(weight)
    xp = get_array_module(weight.data)
    if mode not in BAG_MODES:
        raise ValueError(f"embedding_bag: mode must be one of {', '.join(BAG_MODES)}, got {mode!r}")
    if weight.ndim != 2:
        raise ValueError(f"embedding_bag: weight must be (vocabulary, dim), got shape {weight.shape}")
    if per_sample_weights is not None and mode != "sum":
        raise ValueError(f'embedding_bag: per_sample_weights need mode "sum", got {mode!r}')
    ids = xp.asarray(ids.data if isinstance(ids, Tensor) else ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"embedding_bag: indices must be integers, got dtype {ids.dtype}")
    flat_weights = None if per_sample_weights is None else _data(per_sample_weights, xp, weight.dtype)
    if flat_weights is not None and flat_weights.shape != ids.shape:
        raise ValueError(f"embedding_bag: per_sample_weights have shape {flat_weights.shape}, the ids {ids.shape}")
    if offsets is None:
        ids, offsets, flat_weights = _flattened(ids, mask, flat_weights, xp)
    else:
        if mask is not None:
            raise ValueError("embedding_bag: give offsets (flat ids) or a mask (padded ids), not both")
        offsets = _checked_offsets(xp.asarray(offsets.data if isinstance(offsets, Tensor) else offsets), ids, xp)
    ids, offsets = ids.astype(xp.int64, copy=False), offsets.astype(xp.int64, copy=False)
    _check_vocabulary(ids, weight.shape[0], xp, "embedding_bag")
    if flat_weights is None:
        flat_weights = xp.ones(ids.shape[0], dtype=weight.dtype)
    if mode == "mean":
        sizes = xp.diff(xp.concatenate([offsets, xp.asarray([ids.shape[0]])]))
        flat_weights = flat_weights / xp.maximum(sizes, 1).astype(weight.dtype)[bag_of_items(offsets, ids.shape[0])]
    return EmbeddingBag.apply(weight, ids=ids, offsets=offsets,
                              item_weights=flat_weights.astype(weight.dtype, copy=False))


def _data(values, xp, dtype):
    return xp.asarray(values.data if isinstance(values, Tensor) else values, dtype=dtype)


def _flattened(ids, mask, weights, xp):
    """Padded (batch, length) ids, mask and weights -> flat ids, offsets, flat weights."""
    if ids.ndim != 2:
        raise ValueError(f"embedding_bag: padded ids must be (batch, length), got shape {ids.shape}; "
                         "give offsets for flat ids")
    keep = xp.ones(ids.shape, dtype=bool) if mask is None else _data(mask, xp, None).astype(bool)
    if keep.shape != ids.shape:
        raise ValueError(f"embedding_bag: the mask has shape {keep.shape}, the ids {ids.shape}")
    sizes = keep.sum(axis=1)
    offsets = xp.cumsum(sizes) - sizes
    return ids[keep], offsets, None if weights is None else weights[keep]


def _checked_offsets(offsets, ids, xp):
    if ids.ndim != 1:
        raise ValueError(f"embedding_bag: with offsets the ids must be flat (n,), got shape {ids.shape}")
    if offsets.ndim != 1 or offsets.shape[0] == 0:
        raise ValueError(f"embedding_bag: offsets must be (batch,) with batch >= 1, got shape {offsets.shape}")
    if offsets.dtype.kind not in "iu":
        raise TypeError(f"embedding_bag: offsets must be integers, got dtype {offsets.dtype}")
    steps = xp.diff(offsets)
    # one transfer for the three checks (each int() of a CuPy scalar is a device sync)
    first, last, lowest_step = (int(v) for v in to_numpy(xp.stack([
        offsets[0], offsets[-1], steps.min() if steps.size else offsets[0] * 0])))
    if first != 0 or lowest_step < 0 or last > ids.shape[0]:
        raise ValueError(f"embedding_bag: offsets must start at 0, never decrease and stay within the "
                         f"{ids.shape[0]} ids, got {to_numpy(offsets)[:8].tolist()}")
    return offsets
