"""The Numba CUDA recurrent kernels (kernels/numba_cuda/recurrent.py), run by Numba's
CUDA simulator on the CPU: each held equal to its reference twin, forward and backward,
in float32 and float64, in the persistent form (one launch per sequence) and the
per-step form, for both gate activations and both GRU reset forms, at batch sizes that
leave the last block part-full; then the recurrent ops' gradient checks and one training
step of the LSTM URL models on the `cudasim` kernel target.

The simulator runs every CUDA thread as a Python thread, so the sizes stay tiny."""
import os

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")  # before numba.cuda is first imported

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import minidl  # noqa: E402
from minidl import kernels  # noqa: E402
from minidl.kernels import reference_kernel  # noqa: E402

launch = pytest.importorskip("minidl.kernels.numba_cuda.launch", reason="numba-cuda is not installed")
if not launch.simulator_active():
    pytest.skip("numba.cuda was imported without NUMBA_ENABLE_CUDASIM=1", allow_module_level=True)

from minidl.kernels.numba_cuda import recurrent  # noqa: E402

DTYPES = [np.float32, np.float64]
ACTIVATIONS = ["sigmoid", "hard_sigmoid"]
CELLS = ["rnn", "lstm", "lstm_last", "gru_reset_after", "gru_reset_before"]
# SimpleRNN has no gate activation.
CELL_ACTIVATIONS = [(cell, activation) for cell in CELLS for activation in ACTIVATIONS
                    if cell != "rnn" or activation == "sigmoid"]
# 5 rows of 4 units: the persistent blocks own 2 rows (the last block 1), the per-step
# kernels' 8-thread blocks cover 20 elements (the last block 4).
STEPS, BATCH, UNITS, FEATURES = 4, 5, 4, 3


def tolerance(dtype):
    return {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}


@pytest.fixture(params=["persistent", "persistent_strided", "per_step"])
def form(request, monkeypatch):
    """Which form the kernels take, and the row counts the chooser returned.

    persistent: 8 threads per block, so 2 rows of 4 units per block; and the shared array
    is sized to exactly U plus two rows' states as the chooser counts them, so a kernel
    that reaches past what it declared fails with an IndexError. persistent_strided:
    3 threads for a block of 1 row of 4 units, so a thread owns two elements. per_step:
    no shared memory, so nothing fits."""
    monkeypatch.setattr(launch, "THREADS_PER_BLOCK", 8)
    chosen = []
    choose = recurrent.persistent_rows

    def spy(batch, units, fixed, per_row, dtype):
        if request.param == "persistent":
            monkeypatch.setattr(recurrent, "SHARED_BYTES", np.dtype(dtype).itemsize * (fixed + 2 * per_row))
        rows = choose(batch, units, fixed, per_row, dtype)
        chosen.append(rows)
        return rows

    monkeypatch.setattr(recurrent, "persistent_rows", spy)
    if request.param == "per_step":
        monkeypatch.setattr(recurrent, "SHARED_BYTES", 0)
    else:
        monkeypatch.setattr(recurrent, "PERSISTENT_THREADS", 8 if request.param == "persistent" else 3)
    yield request.param, chosen
    expected_rows = {"persistent": 2, "persistent_strided": 1, "per_step": 0}[request.param]
    assert chosen and all(rows == expected_rows for rows in chosen), chosen


def case(cell, activation, dtype, rng, scale=1.5):
    """(kernel prefix, forward arguments, a function of the forward's outputs and the
    output gradient giving the backward's arguments, shape of that gradient)."""
    def normal(*shape, s=1.0):
        return (s * rng.standard_normal(shape)).astype(dtype)

    gates = 1 if cell == "rnn" else (4 if cell.startswith("lstm") else 3)
    h0 = normal(BATCH, UNITS, s=0.5)
    recurrent_kernel = normal(UNITS, gates * UNITS, s=scale / np.sqrt(UNITS))
    if cell == "rnn":
        args = (normal(STEPS, BATCH, UNITS, s=scale), h0, recurrent_kernel)
        return "rnn", args, lambda out, grad: (grad, out, h0, recurrent_kernel), (STEPS, BATCH, UNITS)
    if cell.startswith("lstm"):
        x, c0 = normal(BATCH, STEPS, FEATURES), normal(BATCH, UNITS, s=0.5)
        kernel = normal(FEATURES, 4 * UNITS, s=scale / np.sqrt(FEATURES))
        last = cell == "lstm_last"  # return_sequences=False, save=True: the gradient of h_T alone
        args = (x, h0, c0, kernel, recurrent_kernel, normal(4 * UNITS, s=scale), activation, not last, True)
        return ("lstm", args,
                lambda out, grad: (grad, x, *out, h0, c0, kernel, recurrent_kernel, activation),
                (1 if last else STEPS, BATCH, UNITS))
    reset_after = cell == "gru_reset_after"
    args = (normal(STEPS, BATCH, 3 * UNITS, s=scale), h0, recurrent_kernel, normal(3 * UNITS, s=0.3),
            reset_after, activation)
    return ("gru", args,
            lambda out, grad: (grad, *out, h0, recurrent_kernel, reset_after, activation),
            (STEPS, BATCH, UNITS))


def assert_all_close(got, expected, dtype, what):
    got = got if isinstance(got, tuple) else (got,)
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert len(got) == len(expected), what
    for k, (g, e) in enumerate(zip(got, expected)):
        assert g.dtype == dtype and g.shape == e.shape, f"{what}, output {k}: {g.dtype} {g.shape} != {e.shape}"
        np.testing.assert_allclose(g, e, err_msg=f"{what}, output {k}", **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell, activation", CELL_ACTIVATIONS)
def test_cuda_kernels_match_their_reference_twins(cell, activation, dtype, form, rng):
    prefix, args, backward_args, grad_shape = case(cell, activation, dtype, rng)
    what = f"{prefix} ({cell}, {activation}, {np.dtype(dtype).name}, {form[0]})"
    expected = reference_kernel("recurrent", f"{prefix}_forward")(*args)
    assert_all_close(getattr(recurrent, f"{prefix}_forward")(*args), expected, dtype, f"{what} forward")
    # Both backwards get the reference forward's outputs: identical inputs.
    grad = rng.standard_normal(grad_shape).astype(dtype)
    arguments = backward_args(expected, grad)
    assert_all_close(getattr(recurrent, f"{prefix}_backward")(*arguments),
                     reference_kernel("recurrent", f"{prefix}_backward")(*arguments), dtype, f"{what} backward")


@pytest.mark.parametrize("save", [True, False])
def test_lstm_without_save_writes_only_the_states_asked_for(save, form, rng):
    # Without a graph (save=False) the persistent kernel writes no cs and gates, and for
    # return_sequences=False only h_T; the values must equal the reference's.
    _, args, _, _ = case("lstm", "sigmoid", np.float64, rng)
    for return_sequences in (True, False):
        full = args[:7] + (return_sequences, save)
        got = recurrent.lstm_forward(*full)
        expected = reference_kernel("recurrent", "lstm_forward")(*full)
        np.testing.assert_allclose(got[0], expected[0], **tolerance(np.float64))
        assert (got[1] is None) == (not save) and (got[2] is None) == (not save)


def test_the_chooser_keeps_u_in_shared_memory_only_where_it_fits():
    # The URL models' LSTM(32) fits in float32 and float64 with room for rows; 64 units'
    # 4 x 64 x 64 U is 64 KiB in float32, over the 48 KiB a block has.
    lstm_forward = dict(fixed=4 * 32 * 32, per_row=3 * 32)
    assert recurrent.persistent_rows(256, 32, dtype=np.float32, **lstm_forward) == 128 // 32
    assert recurrent.persistent_rows(256, 32, dtype=np.float64, **lstm_forward) == 128 // 32
    assert recurrent.persistent_rows(3, 32, dtype=np.float32, **lstm_forward) == 3
    assert recurrent.persistent_rows(256, 64, 4 * 64 * 64, 3 * 64, np.float32) == 0


def test_an_unknown_recurrent_activation_is_a_value_error(rng):
    _, args, _, _ = case("gru_reset_after", "sigmoid", np.float64, rng)
    with pytest.raises(ValueError, match="unknown recurrent_activation 'relu'"):
        recurrent.gru_forward(*args[:5], "relu")
