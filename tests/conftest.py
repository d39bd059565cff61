"""Shared test setup: one thread per library, a fixed seed before every test."""
import os

# Tests run on small arrays, where a second BLAS/Numba/OpenMP thread saves nothing and,
# on a busy machine, spin-waiting workers made some tests 5-50x slower. Set before NumPy
# and Numba are imported; subprocesses (CLI, mpiexec) inherit it.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import minidl  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded():
    minidl.manual_seed(1234)
    np.random.seed(1234)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)
