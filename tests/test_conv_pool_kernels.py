"""The Numba conv and pool kernels held equal to their NumPy reference twins, in float32
and float64, over strides, paddings (even and odd windows) and dilations."""
import numpy as np
import pytest

from minidl import kernels
from minidl.kernels import reference_kernel

# (input h, w), (kernel h, w), stride, ((top, bottom), (left, right)), dilation
CONV_GEOMETRY = [
    ((1, 9), (1, 3), (1, 1), ((0, 0), (1, 1)), (1, 1)),
    ((1, 8), (1, 2), (1, 2), ((0, 0), (0, 1)), (1, 1)),
    ((1, 9), (1, 3), (1, 3), ((0, 0), (0, 0)), (1, 2)),
    ((5, 6), (2, 3), (2, 1), ((0, 1), (1, 1)), (1, 1)),
    ((6, 7), (3, 2), (1, 2), ((2, 2), (1, 1)), (2, 3)),
]
# (input h, w), pool, stride, padding
POOL_GEOMETRY = [
    ((1, 9), (1, 2), (1, 2), ((0, 0), (0, 0))),
    ((1, 8), (1, 3), (1, 2), ((0, 0), (1, 1))),
    ((1, 7), (1, 4), (1, 1), ((0, 0), (1, 2))),
    ((5, 6), (2, 3), (2, 2), ((0, 1), (1, 1))),
    ((4, 4), (4, 4), (4, 4), ((0, 0), (0, 0))),
]
DTYPES = [np.float32, np.float64]

pytestmark = pytest.mark.threads  # CI runs this file again on two threads (see conftest.py)


def tolerance(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


def numba_kernel(family, name):
    """numba_cpu's own kernel: a LookupError, never the reference, when it lacks one."""
    return kernels.own_kernel("numba", family, name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size, window, stride, padding, dilation", CONV_GEOMETRY)
def test_conv2d_kernels_match_reference(size, window, stride, padding, dilation, dtype, rng):
    x = rng.standard_normal((2,) + size + (3,)).astype(dtype)
    kernel = rng.standard_normal(window + (3, 4)).astype(dtype)
    geometry = (stride, padding, dilation)
    y = reference_kernel("conv", "conv2d_forward")(x, kernel, *geometry)
    y_numba = numba_kernel("conv", "conv2d_forward")(x, kernel, *geometry)
    assert y_numba.dtype == y.dtype == dtype
    np.testing.assert_allclose(y_numba, y, **tolerance(dtype))

    grad = rng.standard_normal(y.shape).astype(dtype)
    expected = reference_kernel("conv", "conv2d_backward")(grad, x, kernel, *geometry)
    got = numba_kernel("conv", "conv2d_backward")(grad, x, kernel, *geometry)
    for g, e in zip(got, expected):
        assert g.dtype == dtype and g.shape == e.shape
        np.testing.assert_allclose(g, e, **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("values", ["distinct", "ties"])
@pytest.mark.parametrize("size, pool, stride, padding", POOL_GEOMETRY)
def test_max_pool_kernels_match_reference(size, pool, stride, padding, values, dtype, rng):
    shape = (2,) + size + (3,)
    # Small integers make ties in most windows: both targets must pick the first maximum.
    x = (rng.standard_normal(shape) if values == "distinct" else rng.integers(0, 3, shape)).astype(dtype)
    y, argmax = reference_kernel("pool", "max_pool2d_forward")(x, pool, stride, padding)
    y_numba, argmax_numba = numba_kernel("pool", "max_pool2d_forward")(x, pool, stride, padding)
    assert y_numba.dtype == dtype
    np.testing.assert_array_equal(y_numba, y)
    np.testing.assert_array_equal(argmax_numba, argmax)

    grad = rng.standard_normal(y.shape).astype(dtype)
    expected = reference_kernel("pool", "max_pool2d_backward")(grad, argmax, x.shape, pool, stride, padding)
    got = numba_kernel("pool", "max_pool2d_backward")(grad, argmax, x.shape, pool, stride, padding)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, expected, **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size, pool, stride, padding", POOL_GEOMETRY)
def test_sum_pool_kernels_match_reference(size, pool, stride, padding, dtype, rng):
    x = rng.standard_normal((2,) + size + (3,)).astype(dtype)
    y = reference_kernel("pool", "sum_pool2d_forward")(x, pool, stride, padding)
    y_numba = numba_kernel("pool", "sum_pool2d_forward")(x, pool, stride, padding)
    assert y_numba.dtype == dtype
    np.testing.assert_allclose(y_numba, y, **tolerance(dtype))

    grad = rng.standard_normal(y.shape).astype(dtype)
    expected = reference_kernel("pool", "sum_pool2d_backward")(grad, x.shape, pool, stride, padding)
    got = numba_kernel("pool", "sum_pool2d_backward")(grad, x.shape, pool, stride, padding)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, expected, **tolerance(dtype))


def test_max_pool_window_of_only_minus_infinity_drops_its_gradient():
    # tap 0 of this window lies in the padding; neither target may write outside x
    x = np.full((1, 1, 2, 1), -np.inf)
    geometry = ((1, 3), (1, 3), ((0, 0), (1, 0)))
    for kernel in (reference_kernel, numba_kernel):
        y, argmax = kernel("pool", "max_pool2d_forward")(x, *geometry)
        grad_x = kernel("pool", "max_pool2d_backward")(np.ones_like(y), argmax, x.shape, *geometry)
        assert np.all(y == -np.inf) and np.all(grad_x == 0)
