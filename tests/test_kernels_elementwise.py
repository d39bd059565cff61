"""The Numba activation, dropout and embedding kernels against their NumPy reference
twins (float32 and float64), the dropout generator's keep rate and reproducibility, the
reference dropout's own stream, and gradchecks of the ops on both CPU targets. CI runs
this file again on two threads (`threads`, see conftest.py)."""
import os

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
import minidl.functional as F
from minidl import kernels
from minidl.autograd import gradcheck
from minidl.kernels.numba_cpu import activation as numba_activation
from minidl.kernels.numba_cpu import dropout as numba_dropout
from minidl.kernels.numba_cpu import embedding as numba_embedding
from minidl.kernels.numba_cpu import threads as numba_threads

DTYPES = [np.float32, np.float64]
# float32 kernels may round the last bit differently (elu's expm1 is computed in float64).
RTOL = {np.float32: 2e-7, np.float64: 1e-14}

pytestmark = pytest.mark.threads  # CI runs this file again on two threads (see conftest.py)


def reference(family, name):
    return kernels.reference_kernel(family, name)


def away_from_zero(rng, shape, dtype, gap=0.1):
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < gap, np.sign(x + 1e-12) * gap + x, x).astype(dtype)


def assert_same(actual, expected, dtype):
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=0)


# ------------------------------------------------------------------------ parity
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha", [1.0, 0.3])
def test_activations_match_reference(rng, dtype, alpha):
    x = (3 * rng.standard_normal((3, 5, 7))).astype(dtype)
    grad = rng.standard_normal(x.shape).astype(dtype)
    assert_same(numba_activation.relu_forward(x), reference("activation", "relu_forward")(x), dtype)
    assert_same(numba_activation.relu_backward(grad, x), reference("activation", "relu_backward")(grad, x), dtype)
    out = reference("activation", "elu_forward")(x, alpha)
    assert_same(numba_activation.elu_forward(x, alpha), out, dtype)
    assert_same(numba_activation.elu_backward(grad, x, out, alpha),
                reference("activation", "elu_backward")(grad, x, out, alpha), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_activations_on_non_contiguous_inputs(rng, dtype):
    x = rng.standard_normal((6, 4)).astype(dtype).T
    grad = rng.standard_normal((6, 4)).astype(dtype)[::2].repeat(2, axis=0).T
    assert_same(numba_activation.relu_backward(grad, x), reference("activation", "relu_backward")(grad, x), dtype)
    assert_same(numba_activation.elu_forward(x, 1.0), reference("activation", "elu_forward")(x, 1.0), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_elu_over_the_whole_range(dtype):
    """The hand-written expm1 holds from tiny to hugely negative inputs, -inf and NaN."""
    x = np.concatenate([-np.logspace(-30, 3, 400), np.logspace(-30, 3, 50), [0.0, -0.0, -np.inf, np.inf, np.nan]]).astype(dtype)
    expected = reference("activation", "elu_forward")(x, 1.0)
    actual = numba_activation.elu_forward(x, 1.0)
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype] if dtype == np.float32 else 1e-15, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_backward_matches_reference(rng, dtype):
    grad = rng.standard_normal((4, 9)).astype(dtype)
    keep = rng.random((4, 9)) >= 0.3
    assert_same(numba_dropout.dropout_backward(grad, keep, 0.3),
                reference("dropout", "dropout_backward")(grad, keep, 0.3), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_forward_scales_the_kept_elements(rng, dtype):
    x = rng.standard_normal((5, 6, 7)).astype(dtype)
    out, keep = numba_dropout.dropout_forward(x, 0.4, seed=11)
    assert keep.dtype == np.bool_ and keep.shape == x.shape and out.dtype == dtype
    # The output is what the reference formula gives for the same mask.
    assert_same(out, reference("dropout", "dropout_backward")(x, keep, 0.4), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ids_dtype", [np.int64, np.int32])
def test_embedding_matches_reference(rng, dtype, ids_dtype):
    weight = rng.standard_normal((7, 5)).astype(dtype)
    ids = rng.integers(0, 7, size=(4, 6)).astype(ids_dtype)
    ids[0, :3] = 2  # repeated ids: the scatter-add must sum them
    grad = rng.standard_normal((4, 6, 5)).astype(dtype)
    assert_same(numba_embedding.embedding_forward(ids, weight), reference("embedding", "embedding_forward")(ids, weight), dtype)
    assert_same(numba_embedding.embedding_backward(grad, ids, 7), reference("embedding", "embedding_backward")(grad, ids, 7), dtype)


@settings(max_examples=12, deadline=None)
@given(rows=st.integers(1, 40), dim=st.integers(1, 9), vocab=st.integers(1, 12))
def test_embedding_backward_sums_every_row_once(rows, dim, vocab):
    """Any split of the columns across the threads in force gives the reference sums exactly."""
    rng = np.random.default_rng(rows * 100 + dim)
    ids = rng.integers(0, vocab, size=rows)
    grad = rng.standard_normal((rows, dim))
    actual = numba_embedding.embedding_backward(grad, ids, vocab)
    np.testing.assert_array_equal(actual, reference("embedding", "embedding_backward")(grad, ids, vocab))


def test_the_threads_in_force():
    """MINIDL_TEST_THREADS=n (CI's second run, see conftest.py) runs every test of this
    file on n Numba and BLAS threads, whatever the array size."""
    from threadpoolctl import threadpool_info

    wanted = int(os.environ.get("MINIDL_TEST_THREADS", "1"))
    assert numba.get_num_threads() == wanted
    if wanted > 1:
        assert numba_threads.GRAIN_SIZE == 1
        assert {library["num_threads"] for library in threadpool_info() if library["user_api"] == "blas"} == {wanted}


def test_small_arrays_run_on_one_thread_and_restore_the_count():
    previous = numba.get_num_threads()
    with numba_threads.threads_for(numba_threads.GRAIN_SIZE - 1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == previous
    with numba_threads.threads_for(numba_threads.GRAIN_SIZE):
        assert numba.get_num_threads() == previous


# ------------------------------------------------------------ dropout generator
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_dropout_keeps_the_right_fraction(rate):
    n = 200_000
    _, keep = numba_dropout.dropout_forward(np.ones(n, dtype=np.float32), rate, seed=2024)
    spread = np.sqrt(n * rate * (1 - rate))
    assert abs(keep.sum() - n * (1 - rate)) < 5 * spread


def splitmix64_uniform(seed, i):
    """The documented stream, in plain Python integers (also the CUDA kernel's)."""
    mask = 2**64 - 1
    z = (seed + (i + 1) * 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    z ^= z >> 31
    return (z >> 11) / 2.0**53


@pytest.mark.parametrize("seed", [0, 12345, 2**63 - 1])
def test_dropout_mask_is_the_documented_splitmix64_stream(seed):
    _, keep = numba_dropout.dropout_forward(np.ones(300), 0.35, seed=seed)
    expected = [splitmix64_uniform(seed, i) >= 0.35 for i in range(300)]
    np.testing.assert_array_equal(keep, expected)


def test_dropout_mask_repeats_per_seed_and_differs_across_seeds():
    x = np.ones((50, 40), dtype=np.float32)
    first = numba_dropout.dropout_forward(x, 0.5, seed=7)[1]
    np.testing.assert_array_equal(first, numba_dropout.dropout_forward(x, 0.5, seed=7)[1])
    other = numba_dropout.dropout_forward(x, 0.5, seed=8)[1]
    # Two independent masks agree on about half the elements.
    assert 0.45 < (first == other).mean() < 0.55


def test_dropout_mask_is_independent_of_the_thread_count():
    """The threads in force (two in CI's second run) draw the one-thread mask."""
    x = np.ones(10_001, dtype=np.float64)
    many = numba_dropout.dropout_forward(x, 0.3, seed=5)[1]
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        single = numba_dropout.dropout_forward(x, 0.3, seed=5)[1]
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(many, single)


def test_dropout_draws_are_uncorrelated_along_the_array():
    _, keep = numba_dropout.dropout_forward(np.ones(100_000), 0.5, seed=3)
    kept = keep.astype(np.float64)
    for lag in (1, 2, 64):
        assert abs(np.corrcoef(kept[:-lag], kept[lag:])[0, 1]) < 0.02


# ------------------------------------------------------ the reference's own stream
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 11])
def test_reference_dropout_draws_numpys_stream_for_the_seed(rng, dtype, seed):
    """keep = default_rng(seed).random(x.shape, dtype=x.dtype) >= rate, as documented;
    y = x * keep / (1 - rate) in x's dtype."""
    x = rng.standard_normal((5, 6, 7)).astype(dtype)
    out, keep = reference("dropout", "dropout_forward")(x, 0.4, seed)
    expected = np.random.default_rng(seed).random(x.shape, dtype=dtype) >= 0.4
    assert keep.dtype == np.bool_
    np.testing.assert_array_equal(keep, expected)
    assert_same(out, np.where(expected, x / 0.6, 0).astype(dtype), dtype)


# ------------------------------------------------------------ ops on both targets
def test_the_numba_target_dispatches_to_these_kernels():
    x = np.zeros(3)
    with kernels.use("numba"):
        assert kernels.get_kernel("activation", "elu_forward", x) is numba_activation.elu_forward
        assert kernels.get_kernel("dropout", "dropout_forward", x) is numba_dropout.dropout_forward
        assert kernels.get_kernel("embedding", "embedding_backward", x) is numba_embedding.embedding_backward


@pytest.mark.parametrize("target", kernels.TARGETS)
@pytest.mark.parametrize("op", [F.relu, lambda a: F.elu(a, 0.7), lambda a: F.dropout(a, 0.3, seed=9)],
                         ids=["relu", "elu", "dropout"])
def test_gradcheck_elementwise_ops(rng, op, target):
    x = minidl.tensor(away_from_zero(rng, (3, 4), np.float64), requires_grad=True)
    with kernels.use(target):
        assert gradcheck(op, [x])


@pytest.mark.parametrize("target", kernels.TARGETS)
def test_gradcheck_embedding(rng, target):
    weight = minidl.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    ids = np.array([[0, 2, 2], [4, 0, 1]])
    with kernels.use(target):
        assert gradcheck(lambda w: F.embedding(ids, w), [weight])


@pytest.mark.parametrize("target", kernels.TARGETS)
def test_dropout_op_uses_the_kernel_mask(rng, target):
    x = minidl.tensor(rng.standard_normal((20, 30)), requires_grad=True)
    with kernels.use(target):
        out = F.dropout(x, 0.25, seed=4)
        out.sum().backward()
        _, keep = kernels.get_kernel("dropout", "dropout_forward", x.data)(x.data, 0.25, 4)
    np.testing.assert_array_equal(out.data != 0, keep)
    np.testing.assert_allclose(x.grad, keep / 0.75)
