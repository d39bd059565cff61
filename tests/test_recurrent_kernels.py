"""The Numba recurrent kernels held equal to their NumPy reference twins, forward and
backward, in float32 and float64, for SimpleRNN, LSTM (every state, or the last alone)
and both GRU forms, including saturated gates. (Both recurrent activations:
test_recurrent_activation.py.)"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl import kernels
from minidl.kernels import reference_kernel

DTYPES = [np.float32, np.float64]

pytestmark = pytest.mark.threads  # CI runs this file again on two threads (see conftest.py)
CELLS = ["rnn", "lstm", "lstm_last", "gru_reset_after", "gru_reset_before"]


def tolerance(dtype):
    return {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}


def numba_kernel(name):
    """numba_cpu's own kernel: a LookupError, never the reference, when it lacks one."""
    return kernels.own_kernel("numba", "recurrent", name)


def forward_case(cell, rng, dtype, steps=4, batch=3, units=4, scale=1.0):
    """(kernel family prefix, forward arguments, time-major shape of the gradient that
    comes back) for `cell`; `scale` spreads the pre-activations."""
    def normal(*shape, s=1.0):
        return (s * rng.standard_normal(shape)).astype(dtype)

    gates = {"rnn": 1}.get(cell, 4 if cell.startswith("lstm") else 3)
    h0 = normal(batch, units, s=0.5)
    recurrent_kernel = normal(units, gates * units, s=1 / np.sqrt(units))
    grad_shape = (steps, batch, units)
    if cell.startswith("lstm"):
        # The whole op: x (batch, time, features) and the three weights; "lstm_last" also
        # passes recurrent_activation, return_sequences=False and save=True.
        features = 5
        x = normal(batch, steps, features)
        kernel = normal(features, 4 * units, s=scale / np.sqrt(features))
        args = (x, h0, normal(batch, units, s=0.5), kernel, recurrent_kernel, normal(4 * units, s=scale))
        if cell == "lstm_last":
            return "lstm", args + ("sigmoid", False, True), (1, batch, units)
        return "lstm", args, grad_shape
    projected = normal(steps, batch, gates * units, s=scale)
    if cell == "rnn":
        return "rnn", (projected, h0, recurrent_kernel), grad_shape
    return "gru", (projected, h0, recurrent_kernel, normal(3 * units, s=0.3), cell == "gru_reset_after"), grad_shape


def backward_arguments(prefix, forward_args, outputs, grad_hs):
    """The backward kernel's arguments from the forward's inputs and outputs."""
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    if prefix == "rnn":
        _, h0, recurrent_kernel = forward_args
        return (grad_hs, *outputs, h0, recurrent_kernel)
    if prefix == "lstm":
        x, h0, c0, kernel, recurrent_kernel = forward_args[:5]
        return (grad_hs, x, *outputs, h0, c0, kernel, recurrent_kernel) + forward_args[6:7]
    _, h0, recurrent_kernel, _, reset_after = forward_args
    return (grad_hs, *outputs, h0, recurrent_kernel, reset_after)


def assert_twins_agree(cell, dtype, rng, **shape):
    prefix, args, grad_shape = forward_case(cell, rng, dtype, **shape)
    expected = reference_kernel("recurrent", f"{prefix}_forward")(*args)
    got = numba_kernel(f"{prefix}_forward")(*args)
    expected_tuple = expected if isinstance(expected, tuple) else (expected,)
    got_tuple = got if isinstance(got, tuple) else (got,)
    assert len(got_tuple) == len(expected_tuple)
    for g, e in zip(got_tuple, expected_tuple):
        assert g.dtype == dtype and g.shape == e.shape
        np.testing.assert_allclose(g, e, **tolerance(dtype))

    # Both backward kernels get the reference forward's outputs: identical inputs.
    grad_hs = rng.standard_normal(grad_shape).astype(dtype)
    backward_args = backward_arguments(prefix, args, expected, grad_hs)
    expected_grads = reference_kernel("recurrent", f"{prefix}_backward")(*backward_args)
    got_grads = numba_kernel(f"{prefix}_backward")(*backward_args)
    assert len(got_grads) == len(expected_grads)
    for g, e in zip(got_grads, expected_grads):
        assert g.dtype == dtype and g.shape == e.shape
        np.testing.assert_allclose(g, e, **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", CELLS)
def test_numba_kernels_match_reference(cell, dtype, rng):
    assert_twins_agree(cell, dtype, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", CELLS)
def test_saturated_gates_stay_finite_and_agree(cell, dtype, rng):
    # Pre-activations of +-hundreds: exp overflows in a naive sigmoid; neither twin may
    # warn (warnings are errors here) or return NaN.
    prefix, args, _ = forward_case(cell, rng, dtype, scale=200.0)
    outputs = numba_kernel(f"{prefix}_forward")(*args)
    for array in outputs if isinstance(outputs, tuple) else (outputs,):
        assert np.all(np.isfinite(array))
    assert_twins_agree(cell, dtype, rng, scale=200.0)


@settings(max_examples=10, deadline=None)
@given(cell=st.sampled_from(CELLS), steps=st.integers(1, 5), batch=st.integers(1, 4), units=st.integers(1, 5))
def test_twins_agree_on_any_shape(cell, steps, batch, units):
    assert_twins_agree(cell, np.float64, np.random.default_rng(steps * 100 + batch * 10 + units),
                       steps=steps, batch=batch, units=units)


def test_gru_recurrent_bias_gradient_is_its_share_of_the_pre_activations(rng):
    # With reset_after=False the recurrent bias adds straight onto [a_z, a_r, a_h]: its
    # gradient is then the summed gradient of the projection.
    _, args, _ = forward_case("gru_reset_before", rng, np.float64)
    hs, gates = reference_kernel("recurrent", "gru_forward")(*args)
    grad_hs = rng.standard_normal(hs.shape)
    grad_projected, _, _, grad_recurrent_bias = reference_kernel("recurrent", "gru_backward")(
        *backward_arguments("gru", args, (hs, gates), grad_hs))
    np.testing.assert_allclose(grad_recurrent_bias, grad_projected.sum(axis=(0, 1)), rtol=1e-12)
