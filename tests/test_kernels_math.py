"""The Numba matrix product and vector math held to NumPy: the product on every split
(rows, inner axis, one call) and dtype, and exp / expm1 / sigmoid / tanh / hard_sigmoid
within a few ulp over their whole range, tails included."""
import numba
import numpy as np
import pytest

from minidl import kernels
from minidl.kernels.numba_cpu import math as numba_math
from minidl.kernels.numba_cpu import threads
from minidl.kernels.numba_cpu import vector_math

DTYPES = [np.float32, np.float64]

pytestmark = pytest.mark.threads  # CI runs this file again on two threads (see conftest.py)


@pytest.fixture
def every_product_split(monkeypatch):
    """Split every product, however small, over two threads (where Numba has them)."""
    monkeypatch.setattr(threads, "PRODUCT_GRAIN", 1)
    monkeypatch.setattr(numba_math, "MIN_ROWS", 1)
    monkeypatch.setattr(numba_math, "MIN_INNER", 1)
    previous = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    yield
    numba.set_num_threads(previous)


def tolerance(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", ["a @ b", "a @ b.T", "a.T @ b", "a.T @ b.T"])
def test_matmul_matches_numpy_on_every_layout(dtype, form, rng, every_product_split):
    m, k, n = 7, 5, 3
    a = rng.standard_normal((k, m) if form.startswith("a.T") else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if form.endswith("b.T") else (k, n)).astype(dtype)
    left = a.T if form.startswith("a.T") else a
    right = b.T if form.endswith("b.T") else b
    got = numba_math.matmul(left, right)
    assert got.dtype == dtype and got.shape == (m, n)
    np.testing.assert_allclose(got, left @ right, **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("transposed", [False, True])
def test_matmul_of_a_single_row_splits_the_other_axes(dtype, transposed, rng, every_product_split):
    # One row (a batch of one): split by the inner axis (b's rows contiguous) or, for a
    # transposed b, by the output's columns.
    a = rng.standard_normal((1, 9)).astype(dtype)
    b = rng.standard_normal((5, 9)).astype(dtype).T if transposed else rng.standard_normal((9, 5)).astype(dtype)
    got = numba_math.matmul(a, b)
    assert got.flags.c_contiguous and got.dtype == dtype
    np.testing.assert_allclose(got, a @ b, **tolerance(dtype))


def test_matmul_inner_split_sums_in_a_fixed_order(rng, every_product_split):
    # The weight-gradient form x^T @ g: partial products per part, summed in part order,
    # so repeated calls agree bit for bit whatever the threads' timing.
    x = rng.standard_normal((64, 9)).astype(np.float32)
    g = rng.standard_normal((64, 4)).astype(np.float32)
    first = numba_math.matmul(x.T, g)
    np.testing.assert_array_equal(first, numba_math.matmul(x.T, g))
    np.testing.assert_allclose(first, x.T @ g, rtol=1e-5, atol=1e-5)


def test_matmul_leaves_small_or_odd_products_to_numpy(rng):
    a = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(numba_math.matmul(a, a.T), a @ a.T)
    ints = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(numba_math.matmul(ints, ints.T), ints @ ints.T)


def test_matmul_op_uses_the_kernel_and_keeps_its_gradient(rng, every_product_split):
    import minidl

    a = minidl.tensor(rng.standard_normal((6, 4)), requires_grad=True)
    b = minidl.tensor(rng.standard_normal((4, 5)), requires_grad=True)
    with kernels.use("numba"):
        assert kernels.get_kernel("math", "matmul", a.data, b.data) is numba_math.matmul
        assert minidl.gradcheck(lambda a, b: a @ b, [a, b])


# --------------------------------------------------------------------- vector math
@numba.njit(error_model="numpy")
def _apply(function_id, x, out):
    for i in range(x.size):
        v = x[i]
        if function_id == 0:
            out[i] = vector_math.exp_nonpositive(v)
        elif function_id == 1:
            out[i] = vector_math.expm1_nonpositive(v)
        elif function_id == 2:
            out[i] = vector_math.sigmoid(v)
        elif function_id == 3:
            out[i] = vector_math.tanh(v)
        else:
            out[i] = vector_math.hard_sigmoid(v)


def _evaluate(function_id, x):
    out = np.empty_like(x)
    _apply(function_id, x, out)
    return out


def _ulps(got, expected, dtype):
    scale = np.maximum(np.abs(expected), np.finfo(dtype).tiny)
    return np.max(np.abs(got.astype(np.float64) - expected) / scale) / np.finfo(dtype).eps


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_and_expm1_are_within_a_few_ulp(dtype):
    lowest = -43.6 if dtype == np.float32 else -708.0
    x = np.concatenate([np.linspace(lowest, 0, 100_001), -np.logspace(-12, 0, 1001), [0.0]]).astype(dtype)
    wide = x.astype(np.float64)
    assert _ulps(_evaluate(0, x), np.exp(wide), dtype) < 4
    # expm1 rounds to -1 below -17.5 (float32) / -40 (float64), as the exact value does.
    assert _ulps(_evaluate(1, x), np.expm1(wide), dtype) < 4


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_tanh_are_within_a_few_ulp_and_never_overflow(dtype):
    lowest = -43.6 if dtype == np.float32 else -700.0
    x = np.concatenate([np.linspace(lowest, 60, 200_001), np.linspace(-1e-3, 1e-3, 2001)]).astype(dtype)
    wide = x.astype(np.float64)
    assert _ulps(_evaluate(2, x), 1 / (1 + np.exp(-wide)), dtype) < 16
    assert _ulps(_evaluate(3, x), np.tanh(wide), dtype) < 4
    extremes = np.array([-1e30, -500.0, 500.0, 1e30, np.inf, -np.inf], dtype=dtype)
    sigmoid, tanh = _evaluate(2, extremes), _evaluate(3, extremes)
    assert np.all(np.isfinite(sigmoid)) and np.all((sigmoid >= 0) & (sigmoid <= 1))
    np.testing.assert_array_equal(tanh, [-1, -1, 1, 1, 1, -1])
    assert sigmoid.dtype == dtype and tanh.dtype == dtype
    assert np.isnan(_evaluate(2, np.array([np.nan], dtype=dtype)))[0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_hard_sigmoid_is_keras_2s(dtype):
    x = np.linspace(-4, 4, 801).astype(dtype)
    got = _evaluate(4, x)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, np.clip(0.2 * x + 0.5, 0, 1), rtol=0, atol=4 * np.finfo(dtype).eps)
