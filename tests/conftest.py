"""Shared test setup: a fixed seed before every test, float64 helpers."""
import numpy as np
import pytest

import minidl


@pytest.fixture(autouse=True)
def _seeded():
    minidl.manual_seed(1234)
    np.random.seed(1234)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)
