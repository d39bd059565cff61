"""The fused optimiser kernels (kernels/*/optim.py): the Numba twins equal the NumPy
reference bit for bit, dense and row by row, and Adam and SGD give the same steps on
either CPU target."""
import numpy as np
import pytest

from minidl import kernels
from minidl.kernels import reference_kernel

pytestmark = pytest.mark.threads  # CI runs this file again on two threads (see conftest.py)
DTYPES = [np.float32, np.float64]
ROWS = np.array([0, 3, 4, 7])


def numba_kernel(name):
    with kernels.use("numba"):
        return kernels.get_kernel("optim", name, np.zeros(1))


def state(rng, dtype, shape=(9, 5)):
    """param, grad, m and v (v non-negative), drawn once."""
    param, grad, m = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    return param, grad, m * dtype(0.1), np.abs(rng.standard_normal(shape)).astype(dtype) * dtype(0.01)


def run_both(name, arrays, rest, update_index):
    """Run the reference and the Numba kernel `name` on their own copies of `arrays`
    (followed by the plain arguments `rest`); the copies of every array they update."""
    results = []
    for kernel in (reference_kernel("optim", name), numba_kernel(name)):
        copies = [None if a is None else a.copy() for a in arrays]
        kernel(*copies, *rest)
        results.append([copies[i] for i in update_index])
    return results


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_kernels_equal_the_reference(dtype, rng):
    param, grad, m, v = state(rng, dtype)
    assert numba_kernel("adam_update") is not reference_kernel("optim", "adam_update")
    scalars = (0.003, 0.9, 0.999, 1e-7)
    expected, got = run_both("adam_update", [param, grad, m, v], scalars, [0, 2, 3])
    for e, g in zip(expected, got):
        assert g.dtype == dtype
        np.testing.assert_array_equal(g, e)
    expected, got = run_both("adam_update_rows", [param, ROWS, grad[ROWS], m, v], scalars, [0, 3, 4])
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)
    untouched = np.setdiff1d(np.arange(9), ROWS)
    np.testing.assert_array_equal(got[0][untouched], param[untouched])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_kernels_equal_the_reference(dtype, momentum, nesterov, rng):
    param, grad, velocity, _ = state(rng, dtype)
    velocity = velocity if momentum else None
    expected, got = run_both("sgd_update", [param, grad, velocity], (0.05, momentum, nesterov), [0, 2])
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)
    expected, got = run_both("sgd_update_rows", [param, ROWS, grad[ROWS], velocity], (0.05, momentum, nesterov), [0, 3])
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)


def test_the_rows_form_is_the_dense_form_on_those_rows(rng):
    param, grad, m, v = state(rng, np.float64)
    dense = [a.copy() for a in (param, m, v)]
    reference_kernel("optim", "adam_update")(dense[0], grad, dense[1], dense[2], 0.01, 0.9, 0.999, 1e-7)
    rows = [a.copy() for a in (param, m, v)]
    reference_kernel("optim", "adam_update_rows")(rows[0], ROWS, grad[ROWS], rows[1], rows[2], 0.01, 0.9, 0.999, 1e-7)
    for d, r in zip(dense, rows):
        np.testing.assert_array_equal(r[ROWS], d[ROWS])


def test_non_contiguous_slots_are_refused_rather_than_updated_in_a_copy(rng):
    param, grad, m, v = state(rng, np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        numba_kernel("adam_update")(param.T, grad.T, m.T, v.T, 0.01, 0.9, 0.999, 1e-7)
