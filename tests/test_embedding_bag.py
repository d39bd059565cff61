"""embedding_bag: its definition, float64 gradient checks in both layouts, its row-sparse
gradient (IndexedSlices) and the optimisers' row updates, its Numba kernels against the
NumPy twins, and its errors."""
import numpy as np
import pytest

import minidl
from minidl import kernels, nn, optim
from minidl import functional as F
from minidl.kernels import reference_kernel
from minidl.sparse import IndexedSlices

pytestmark = pytest.mark.threads  # CI runs this file again on two threads (see conftest.py)
IDS = np.array([[1, 4, 4, 0], [0, 2, 6, 6], [3, 3, 3, 3]])
MASK = np.array([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]])  # the last sample's bag is empty
FLAT_IDS, OFFSETS = np.array([3, 1, 3, 5, 0, 6]), np.array([0, 0, 3, 4])  # the first bag is empty
TARGETS = ["numpy", "numba"]


def table(rows=7, dim=3, seed=0):
    return minidl.tensor(np.random.default_rng(seed).standard_normal((rows, dim)), requires_grad=True)


def bags_by_hand(ids, mask, weight, weights, mode):
    out = np.zeros((ids.shape[0], weight.shape[1]))
    for b in range(ids.shape[0]):
        kept = [j for j in range(ids.shape[1]) if mask[b, j]]
        for j in kept:
            out[b] += weights[b, j] * weight[ids[b, j]]
        if mode == "mean" and kept:
            out[b] /= len(kept)
    return out


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("mode, weighted", [("sum", False), ("mean", False), ("sum", True)])
def test_forward_is_the_masked_sum_or_mean_of_the_rows(target, mode, weighted):
    weight = table()
    weights = np.random.default_rng(1).uniform(0.5, 2.0, IDS.shape)
    with kernels.use(target):
        out = F.embedding_bag(IDS, weight, mask=MASK, per_sample_weights=weights if weighted else None, mode=mode)
    expected = bags_by_hand(IDS, MASK, weight.numpy(), weights if weighted else np.ones(IDS.shape), mode)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("target", TARGETS)
def test_flat_ids_with_offsets_equal_the_padded_layout(target):
    weight = table()
    with kernels.use(target):
        flat = F.embedding_bag(FLAT_IDS, weight, offsets=OFFSETS, mode="mean").numpy()
        padded = F.embedding_bag(np.array([[0, 0, 0], [3, 1, 3], [5, 0, 0], [0, 6, 0]]), weight,
                                 mask=np.array([[0, 0, 0], [1, 1, 1], [1, 0, 0], [1, 1, 0]]), mode="mean").numpy()
    np.testing.assert_allclose(flat, padded, rtol=1e-12)
    assert np.all(flat[0] == 0)  # an empty bag


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("layout", ["padded_mean", "padded_weighted_sum", "flat_mean", "flat_sum"])
def test_gradcheck_in_float64(target, layout):
    weight = table()
    weights = np.random.default_rng(2).uniform(0.5, 2.0, IDS.shape)
    calls = {
        "padded_mean": lambda w: F.embedding_bag(IDS, w, mask=MASK, mode="mean"),
        "padded_weighted_sum": lambda w: F.embedding_bag(IDS, w, mask=MASK, per_sample_weights=weights, mode="sum"),
        "flat_mean": lambda w: F.embedding_bag(FLAT_IDS, w, offsets=OFFSETS, mode="mean"),
        "flat_sum": lambda w: F.embedding_bag(FLAT_IDS, w, offsets=OFFSETS, mode="sum"),
    }
    with kernels.use(target):
        assert minidl.gradcheck(calls[layout], [weight])


def test_the_gradient_holds_only_the_rows_the_batch_used():
    weight = table(rows=2**18, dim=4)
    F.embedding_bag(IDS, weight, mask=MASK, mode="sum").sum().backward()
    grad = weight.grad
    assert isinstance(grad, IndexedSlices) and grad.shape == (2**18, 4)
    np.testing.assert_array_equal(grad.indices, [0, 1, 4])  # distinct ids under the mask, in order
    np.testing.assert_array_equal(grad.values, [[1.0] * 4, [1.0] * 4, [2.0] * 4])  # id 4 counted twice
    dense = np.asarray(grad)
    assert dense.shape == (2**18, 4) and dense[4, 0] == 2.0 and dense.sum() == 16.0


def test_indexed_slices_add_up_sparse_with_sparse_and_dense_with_dense():
    shape = (5, 2)
    a = IndexedSlices(np.array([1, 3]), np.ones((2, 2)), shape)
    b = IndexedSlices(np.array([0, 3]), np.full((2, 2), 2.0), shape)
    both = a + b
    assert isinstance(both, IndexedSlices)
    np.testing.assert_array_equal(both.indices, [0, 1, 3])
    np.testing.assert_array_equal(both.to_dense(), a.to_dense() + b.to_dense())
    dense = np.arange(10.0).reshape(shape)
    for summed in (dense + a, a + dense):
        assert isinstance(summed, np.ndarray)
        np.testing.assert_array_equal(summed, dense + a.to_dense())
    accumulated = dense.copy()
    accumulated += a
    np.testing.assert_array_equal(accumulated, dense + a.to_dense())
    assert np.all(dense == np.arange(10.0).reshape(shape))  # `dense + a` did not write into dense


def test_a_table_used_twice_and_penalised_densely_gets_the_sum_of_the_gradients():
    weight = table()
    loss = F.embedding_bag(IDS, weight, mask=MASK).sum() + F.embedding_bag(FLAT_IDS, weight, offsets=OFFSETS).sum()
    (loss + F.l2_penalty(weight, 0.1)).backward()
    assert isinstance(weight.grad, np.ndarray)  # the dense penalty's gradient makes it dense
    assert minidl.gradcheck(lambda w: F.embedding_bag(IDS, w, mask=MASK).sum()
                            + F.embedding_bag(FLAT_IDS, w, offsets=OFFSETS).sum() + F.l2_penalty(w, 0.1), [weight])


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("make", [lambda p: optim.Adam(p, lr=0.1), lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
                                  lambda p: optim.SGD(p, lr=0.1)], ids=["adam", "momentum", "sgd"])
def test_optimisers_update_only_the_rows_a_sparse_gradient_holds(target, make):
    """Each touched row moves exactly as the dense rule moves it; untouched rows (and
    their slots) stay as they are (the lazy form of momentum and Adam)."""
    sparse_weight, dense_weight = table(), table()
    sparse_opt, dense_opt = make([sparse_weight]), make([dense_weight])
    with kernels.use(target):
        for step in range(3):
            ids = IDS[step % 2:step % 2 + 2]
            for weight in (sparse_weight, dense_weight):
                weight.grad = None
                (F.embedding_bag(ids, weight, mask=np.ones(ids.shape)) * float(step + 1)).sum().backward()
            assert isinstance(sparse_weight.grad, IndexedSlices)
            rows = sparse_weight.grad.indices
            before = sparse_weight.numpy().copy()
            dense_weight.grad = np.asarray(dense_weight.grad)
            if step == 0:  # from the same start, the first step of both forms agrees on the touched rows
                dense_opt.step()
                sparse_opt.step()
                np.testing.assert_allclose(sparse_weight.numpy()[rows], dense_weight.numpy()[rows], rtol=1e-12)
            else:
                sparse_opt.step()
            untouched = np.setdiff1d(np.arange(7), rows)
            np.testing.assert_array_equal(sparse_weight.numpy()[untouched], before[untouched])
            assert not np.array_equal(sparse_weight.numpy()[rows], before[rows])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numba_bag_kernels_equal_the_reference(dtype, rng):
    ids = rng.integers(0, 40, 300)
    offsets = np.sort(rng.integers(0, 300, 24))
    offsets[0], offsets[5:7] = 0, offsets[4]  # two empty bags
    weight = rng.standard_normal((40, 5)).astype(dtype)
    item_weights = rng.uniform(0.5, 2.0, 300).astype(dtype)
    grad = rng.standard_normal((24, 5)).astype(dtype)
    with kernels.use("numba"):
        forward = kernels.get_kernel("embedding", "embedding_bag_forward", weight)
        backward = kernels.get_kernel("embedding", "embedding_bag_backward", grad)
    assert forward is not reference_kernel("embedding", "embedding_bag_forward")
    out = forward(ids, offsets, weight, item_weights)
    expected = reference_kernel("embedding", "embedding_bag_forward")(ids, offsets, weight, item_weights)
    assert out.dtype == expected.dtype == dtype
    np.testing.assert_array_equal(out, expected)  # the same additions in the same order
    rows, values = backward(grad, ids, offsets, item_weights)
    expected_rows, expected_values = reference_kernel("embedding", "embedding_bag_backward")(grad, ids, offsets,
                                                                                             item_weights)
    np.testing.assert_array_equal(rows, expected_rows)
    assert values.dtype == dtype
    np.testing.assert_array_equal(values, expected_values)


def test_the_layer_sums_or_averages_and_reports_its_shape():
    layer = nn.EmbeddingBag(7, 3, mode="sum")
    out = layer(IDS, mask=MASK)
    assert out.shape == (3, 3) and layer.compute_output_shape((None, 4)) == (None, 3)
    clone = nn.EmbeddingBag.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_bad_arguments_are_clear_errors():
    weight = table()
    with pytest.raises(ValueError, match="mode must be one of sum, mean"):
        F.embedding_bag(IDS, weight, mode="max")
    with pytest.raises(ValueError, match='per_sample_weights need mode "sum"'):
        F.embedding_bag(IDS, weight, per_sample_weights=np.ones(IDS.shape), mode="mean")
    with pytest.raises(ValueError, match="offsets must start at 0, never decrease"):
        F.embedding_bag(FLAT_IDS, weight, offsets=np.array([0, 4, 2]))
    with pytest.raises(ValueError, match="offsets must start at 0"):
        F.embedding_bag(FLAT_IDS, weight, offsets=np.array([1, 2]))
    with pytest.raises(ValueError, match="not both"):
        F.embedding_bag(FLAT_IDS, weight, offsets=OFFSETS, mask=np.ones(6))
    with pytest.raises(ValueError, match="index 9 is out of the vocabulary of 7"):
        F.embedding_bag(np.array([[1, 9]]), weight)
    with pytest.raises(TypeError, match="indices must be integers"):
        F.embedding_bag(np.array([[1.0, 2.0]]), weight)
    with pytest.raises(ValueError, match="the mask has shape"):
        F.embedding_bag(IDS, weight, mask=np.ones((3, 2)))
    with pytest.raises(ValueError, match="padded ids must be"):
        F.embedding_bag(FLAT_IDS, weight)
