"""backend: dtype defaults and thread control."""
import numba
import numpy as np
import pytest
import threadpoolctl

import minidl
from minidl import backend, kernels
from minidl.kernels import parallelism
from minidl.cli import main


def _blas_threads():
    return {pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"}


def test_set_num_threads_gives_the_threads_to_one_pool_only():
    """With the numba kernels Numba's pool gets the threads and BLAS one; with the
    numpy kernels BLAS gets them (kernels/parallelism.py)."""
    before = minidl.get_num_threads()
    try:
        with kernels.use("numba"):
            minidl.set_num_threads(1)
            assert numba.get_num_threads() == 1 and minidl.get_num_threads() == 1
            assert _blas_threads() == {1}
            minidl.set_num_threads(2)
            assert numba.get_num_threads() == min(2, numba.config.NUMBA_NUM_THREADS)
            assert _blas_threads() == {1}
        with kernels.use("numpy"):
            minidl.set_num_threads(1)
            assert _blas_threads() == {1}
    finally:
        minidl.set_num_threads(before)
    with pytest.raises(ValueError, match="at least 1"):
        minidl.set_num_threads(0)


@pytest.mark.parametrize("pool, busy, expected", [(2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 1.7, 1), (2, 9.0, 1),
                                                   (8, 2.2, 6), (1, 0.0, 1)])
def test_the_default_thread_count_is_the_idle_cores(pool, busy, expected, monkeypatch):
    monkeypatch.setattr(parallelism.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    count, why = parallelism.idle_cores(pool_size=pool, busy=busy)
    assert count == expected and why.startswith(f"{expected} of {min(pool, 8)} cores idle")


def test_busy_cores_counts_what_other_work_used_while_minidl_looked(monkeypatch):
    """Core 0 idle 3/4 of the time it was watched, core 1 never: 1.25 cores busy; the
    count comes from now, not from a load average that remembers the last minute."""
    readings = iter([{0: (100, 1000), 1: (50, 1000)}, {0: (130, 1040), 1: (50, 1040)}])
    monkeypatch.setattr(parallelism, "_cpu_times", lambda cores: next(readings))
    monkeypatch.setattr(parallelism.time, "sleep", lambda seconds: None)
    assert parallelism.busy_cores({0, 1}) == pytest.approx(1.25)
    monkeypatch.setattr(parallelism, "_cpu_times", lambda cores: None)  # no /proc/stat: the load average decides
    monkeypatch.setattr(parallelism, "_load_average", lambda: 0.2)
    monkeypatch.setattr(parallelism.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert parallelism.idle_cores(pool_size=2) == (2, "2 of 2 cores idle (the one-minute load average: 0.2 busy "
                                                      "with other work)")


def test_cli_threads_option_rejects_a_bad_count(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--threads", "0", "summary", "--arch", "simple_lstm"])
    assert stop.value.code == 2
    assert "--threads: expected a positive integer, got '0'" in capsys.readouterr().err


def test_default_dtype_accepts_only_floats():
    minidl.set_default_dtype("float64")
    try:
        assert minidl.tensor([1.0]).dtype == np.float64
    finally:
        minidl.set_default_dtype(np.float32)
    with pytest.raises(ValueError, match="float32 or float64"):
        minidl.set_default_dtype(np.int32)
