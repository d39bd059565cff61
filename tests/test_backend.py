"""backend: dtype defaults and thread control."""
import numba
import numpy as np
import pytest
import threadpoolctl

import minidl
from minidl import backend
from minidl.cli import main


def test_set_num_threads_limits_blas_and_numba():
    before = numba.get_num_threads()
    try:
        backend.set_num_threads(1)
        assert numba.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas")
    finally:
        numba.set_num_threads(before)
    with pytest.raises(ValueError, match="at least 1"):
        backend.set_num_threads(0)


def test_cli_threads_option_rejects_a_bad_count(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--threads", "0", "summary", "--arch", "simple_lstm"])
    assert stop.value.code == 2
    assert "at least 1" in capsys.readouterr().err


def test_default_dtype_accepts_only_floats():
    minidl.set_default_dtype("float64")
    try:
        assert minidl.tensor([1.0]).dtype == np.float64
    finally:
        minidl.set_default_dtype(np.float32)
    with pytest.raises(ValueError, match="float32 or float64"):
        minidl.set_default_dtype(np.int32)
