"""The Numba CUDA recurrent kernels (kernels/numba_cuda/recurrent.py), run by Numba's
CUDA simulator on the CPU: each held equal to its reference twin, forward and backward,
in float32 and float64, in the persistent form (one launch per sequence) and the
per-step form, for both gate activations and both GRU reset forms, at batch sizes that
leave the last block part-full; then the recurrent ops' gradient checks and one training
step of the LSTM URL models on the `cudasim` kernel target.

The simulator runs every CUDA thread as a Python thread, so the sizes stay tiny."""
import os

import numpy as np
import pytest

import minidl
from minidl import backend, kernels
from minidl import functional as F
from minidl.autograd import gradcheck
from minidl.kernels import reference_kernel
from minidl.ops.recurrent import gru_sequence, lstm_sequence, rnn_sequence

# conftest.py turns the simulator on before numba.cuda is first imported; a run that
# turned it off (NUMBA_ENABLE_CUDASIM=0, on a GPU) skips this file, and one where it was
# meant to be on but numba.cuda came up without it fails rather than skipping unseen.
launch = pytest.importorskip("minidl.kernels.numba_cuda.launch", reason="numba-cuda is not installed")
if not launch.simulator_active():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "0":
        pytest.skip("NUMBA_ENABLE_CUDASIM=0: the simulator is off", allow_module_level=True)
    raise RuntimeError("numba.cuda is not Numba's CUDA simulator although NUMBA_ENABLE_CUDASIM="
                       f"{os.environ.get('NUMBA_ENABLE_CUDASIM')!r}: something imported Numba before it was set")

from minidl.kernels.numba_cuda import persistent, recurrent

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
    choose = persistent.persistent_rows

    def spy(batch, units, fixed, per_row, dtype):
        if request.param == "persistent":
            monkeypatch.setattr(persistent, "SHARED_BYTES", np.dtype(dtype).itemsize * (fixed + 2 * per_row))
        rows = choose(batch, units, fixed, per_row, dtype)
        chosen.append(rows)
        return rows

    monkeypatch.setattr(persistent, "persistent_rows", spy)
    if request.param == "per_step":
        monkeypatch.setattr(persistent, "SHARED_BYTES", 0)
    else:
        monkeypatch.setattr(persistent, "PERSISTENT_THREADS", 8 if request.param == "persistent" else 3)
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
    lstm_forward = {"fixed": 4 * 32 * 32, "per_row": 3 * 32}
    assert persistent.persistent_rows(256, 32, dtype=np.float32, **lstm_forward) == 128 // 32
    assert persistent.persistent_rows(256, 32, dtype=np.float64, **lstm_forward) == 128 // 32
    assert persistent.persistent_rows(3, 32, dtype=np.float32, **lstm_forward) == 3
    assert persistent.persistent_rows(256, 64, 4 * 64 * 64, 3 * 64, np.float32) == 0


def test_an_unknown_recurrent_activation_is_a_value_error(rng):
    _, args, _, _ = case("gru_reset_after", "sigmoid", np.float64, rng)
    with pytest.raises(ValueError, match="unknown recurrent_activation 'relu'"):
        recurrent.gru_forward(*args[:5], "relu")


# ------------------------------------------------------- the ops on the cudasim target
def t64(rng, *shape, scale=1.0):
    return minidl.tensor(scale * rng.standard_normal(shape), dtype=np.float64, requires_grad=True)


def sequence_case(rng, gates, split_bias=False, batch=2, steps=2, features=2, units=2):
    """x, h0 (and c0 for the LSTM), kernel, recurrent_kernel, bias: tiny, as every
    element costs two simulated forward passes."""
    states = [t64(rng, batch, units, scale=0.5) for _ in range(2 if gates == 4 else 1)]
    bias = t64(rng, 2, gates * units) if split_bias else t64(rng, gates * units)
    return [t64(rng, batch, steps, features), *states, t64(rng, features, gates * units),
            t64(rng, units, gates * units, scale=0.5), bias]


def test_the_cudasim_target_sends_numpy_arrays_to_these_kernels():
    # What makes the gradchecks below checks of these kernels.
    with kernels.use("cudasim"):
        for name in ("rnn", "lstm", "gru"):
            for direction in ("forward", "backward"):
                kernel = f"{name}_{direction}"
                assert kernels.get_kernel("recurrent", kernel, np.zeros(1)) is getattr(recurrent, kernel)


@pytest.mark.parametrize("activation, return_sequences", [("sigmoid", True), ("hard_sigmoid", False)])
def test_lstm_sequence_gradcheck_on_the_cudasim_target(activation, return_sequences, rng):
    # return_sequences=False: only h_T comes out and goes back.
    with kernels.use("cudasim"):
        assert gradcheck(lambda *a: lstm_sequence(*a, recurrent_activation=activation,
                                                  return_sequences=return_sequences), sequence_case(rng, 4))


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_sequence_gradcheck_on_the_cudasim_target(reset_after, rng):
    with kernels.use("cudasim"):
        assert gradcheck(lambda *a: gru_sequence(*a, reset_after=reset_after),
                         sequence_case(rng, 3, split_bias=reset_after))


def test_rnn_sequence_gradcheck_on_the_cudasim_target(rng):
    with kernels.use("cudasim"):
        assert gradcheck(rnn_sequence, sequence_case(rng, 1))


# ---------------------------------------------------------------- the URL models
SMALL_MODELS = {
    "simple_lstm": {"max_len": 8, "emb_dim": 3, "max_vocab_len": 7, "lstm_output_size": 4},
    "lstm_conv": {"max_len": 8, "emb_dim": 3, "max_vocab_len": 7, "lstm_output_size": 4, "filters": 3,
                  "kernel_size": 3, "pool_size": 2},
}


def train_step(name):
    """Loss, gradients and weights after one SGD step (momentum) on one generated batch."""
    from minidl.models import url
    rng = np.random.default_rng(7)
    ids = minidl.tensor(rng.integers(1, 7, size=(4, 8)).astype(np.int32))
    labels = minidl.tensor(rng.integers(0, 2, size=(4, 1)).astype(np.float32))
    minidl.manual_seed(0)
    model = url.build_model(name, **SMALL_MODELS[name]).train()
    optimizer = minidl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss = model.regularized(F.binary_cross_entropy(model(ids), labels))
    loss.backward()
    grads = {n: backend.to_numpy(p.grad) for n, p in model.named_parameters() if p.grad is not None}
    optimizer.step()
    return loss.item(), grads, model.state_dict()


@pytest.mark.parametrize("name", list(SMALL_MODELS))
def test_a_url_model_training_step_on_the_cudasim_target_matches_numba(name):
    # Dropout stays on: both targets draw the same masks for a seed.
    with kernels.use("numba"):
        cpu_loss, cpu_grads, cpu_state = train_step(name)
    with kernels.use("cudasim"):
        loss, grads, state = train_step(name)
    np.testing.assert_allclose(loss, cpu_loss, rtol=1e-5)
    assert grads.keys() == cpu_grads.keys()
    for parameter, grad in grads.items():
        np.testing.assert_allclose(grad, cpu_grads[parameter], rtol=1e-4, atol=1e-6, err_msg=parameter)
    for key, value in state.items():
        np.testing.assert_allclose(value, cpu_state[key], rtol=1e-4, atol=1e-6, err_msg=key)
