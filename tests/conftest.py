"""Shared test setup: the thread counts, a fixed seed before every test, shared-data paths.

Threads. Tests run on small arrays, where a second BLAS/Numba/OpenMP thread saves
nothing and, on a busy machine, spin-waiting workers made some tests 5-50x slower; so
every library gets one thread, set before NumPy and Numba are imported (subprocesses,
the CLI and mpiexec, inherit it). One thread never runs a parallel loop's split, so the
test files that hold kernels to their twins carry `pytestmark = pytest.mark.threads`,
and CI runs them a second time with MINIDL_TEST_THREADS=2 (`.ci/run`):

    MINIDL_TEST_THREADS=2 python -m pytest -q -m threads

Numba's pool then holds two threads, and each `threads` test runs with
numba.set_num_threads(2), two BLAS threads (threadpoolctl) and
minidl.kernels.numba_cpu.threads.GRAIN_SIZE lowered to 1, so that every parallel loop
splits even a test's small arrays across both threads. A new kernel test file joins by
carrying the mark. (Keep `-m threads` in that run: other tests would inherit Numba's
two-thread default, and their subprocesses NUMBA_NUM_THREADS=2.)

The CUDA simulator. numba.cuda reads NUMBA_ENABLE_CUDASIM once, when first imported, so
it is set here, before anything imports it, unless the caller chose: the CUDA kernels'
tests (tests/test_cuda_kernels.py, MINIDL_KERNELS=cudasim) then run on the CPU, and on a
GPU machine `NUMBA_ENABLE_CUDASIM=0 python -m pytest -m gpu` runs the kernels on the GPU.
"""
import os

TEST_THREADS = int(os.environ.get("MINIDL_TEST_THREADS", "1"))
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
if TEST_THREADS > 1:
    # Numba sizes its pool once, at import; set_num_threads can only go up to that.
    os.environ["NUMBA_NUM_THREADS"] = str(TEST_THREADS)
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import minidl  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "threads: kernel tests that CI runs again with MINIDL_TEST_THREADS=2 (see tests/conftest.py)")


def pytest_report_header(config):
    if TEST_THREADS > 1:
        return f"MINIDL_TEST_THREADS={TEST_THREADS}: tests marked `threads` run on {TEST_THREADS} Numba and BLAS threads"
    return None


@pytest.fixture(autouse=True)
def _seeded():
    minidl.manual_seed(1234)
    np.random.seed(1234)
    yield


@pytest.fixture(autouse=True)
def _thread_count(request, monkeypatch):
    """TEST_THREADS Numba and BLAS threads, at every array size, for a test marked `threads`."""
    if TEST_THREADS == 1 or request.node.get_closest_marker("threads") is None:
        yield
        return
    # Imported here, so that the suite collects without Numba (benchmarks/gpu_check.sh's
    # dry run may use a bare python3). Numba's compiled products call SciPy's BLAS, a
    # library of its own: loaded first, so that threadpoolctl finds it too.
    import numba
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_limits

    from minidl.kernels.numba_cpu import threads as numba_threads

    monkeypatch.setattr(numba_threads, "GRAIN_SIZE", 1)
    previous = numba.get_num_threads()
    numba.set_num_threads(TEST_THREADS)
    try:
        with threadpool_limits(TEST_THREADS):
            yield
    finally:
        numba.set_num_threads(previous)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def shared_data():
    """`find(relative_path)`: the file or folder under $MINIDL_DATA_DIR, else under
    ../shared/data beside the repository; the test is skipped, saying so, when neither
    holds it."""
    folders = [Path(os.environ["MINIDL_DATA_DIR"])] if os.environ.get("MINIDL_DATA_DIR") else []
    folders.append(REPO.parent / "shared" / "data")

    def find(relative_path):
        for folder in folders:
            if (folder / relative_path).exists():
                return folder / relative_path
        pytest.skip(f"shared data absent: {relative_path} is in neither $MINIDL_DATA_DIR nor {folders[-1]}")

    return find
