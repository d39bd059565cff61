"""The first run says it compiles the Numba kernels, and how long that took."""
import io
import re

import pytest

numba = pytest.importorskip("numba")

from minidl.kernels import numba_cache  # noqa: E402


def test_compile_messages_come_with_the_first_compilation_only(monkeypatch):
    kernel = numba.njit(lambda a: a + 1)
    monkeypatch.setattr(numba_cache, "numba_kernels", lambda: {"toy.add_one": kernel})
    monkeypatch.setattr(numba_cache, "uncompiled_kernels", lambda: ["toy.add_one"])
    stream = io.StringIO()
    with numba_cache.compile_messages(stream):
        assert kernel(1) == 2 and kernel(2) == 3  # compiled once
    first, second = stream.getvalue().splitlines()
    assert first == "compiling kernels (once, about 5 s; later runs load them from Numba's cache)"
    assert re.fullmatch(r"compiled 1 kernel in \d+ s", second)
    stream = io.StringIO()
    with numba_cache.compile_messages(stream):
        kernel(3)  # nothing left to compile: nothing said
    assert stream.getvalue() == ""


def test_other_numba_functions_are_not_counted(monkeypatch):
    ours, theirs = numba.njit(lambda a: a * 2), numba.njit(lambda a: a * 3)
    monkeypatch.setattr(numba_cache, "numba_kernels", lambda: {"toy.double": ours})
    stream = io.StringIO()
    with numba_cache.compile_messages(stream):
        theirs(1)
    assert stream.getvalue() == ""


def test_the_kernels_are_found_and_the_estimate_is_rounded():
    kernels = numba_cache.numba_kernels()
    assert "conv._im2col" in kernels and "recurrent._lstm_forward_loop" in kernels
    assert set(numba_cache.uncompiled_kernels()) <= set(kernels)
    assert numba_cache.compile_estimate(0) == 5 and numba_cache.compile_estimate(12) == 25
