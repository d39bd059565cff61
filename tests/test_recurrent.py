"""Recurrent ops and layers: sequence ops against step-by-step NumPy written from the
equations, cells against sequence ops, gradchecks of every input (states included) on
both kernel targets, and the SimpleRNN / LSTM / GRU layers with Keras' shapes, parameter
counts, initialisers and errors."""
import numpy as np
import pytest

import minidl
from minidl import kernels, nn
from minidl.autograd import gradcheck
from minidl.nn.module import layer_from_config, serialize
from minidl.nn.recurrent import GRU, LSTM, SimpleRNN
from minidl.ops.recurrent import (
    gru_cell,
    gru_sequence,
    lstm_cell,
    lstm_sequence,
    rnn_cell,
    rnn_sequence,
)

TARGETS = ["numpy", "numba"]
BATCH, STEPS, FEATURES, UNITS = 2, 4, 3, 3


@pytest.fixture
def float64():
    minidl.set_default_dtype(np.float64)
    yield
    minidl.set_default_dtype(np.float32)


def t64(rng, *shape, scale=1.0):
    return minidl.tensor(scale * rng.standard_normal(shape), dtype=np.float64, requires_grad=True)


# ------------------------------------------------- plain NumPy, from the equations
def np_sigmoid(a):
    return 1 / (1 + np.exp(-a))


def np_rnn(x, h, W, U, b):
    out = []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ W + h @ U + b)
        out.append(h)
    return np.stack(out, axis=1)


def np_lstm(x, h, c, W, U, b):
    n = h.shape[1]
    out = []
    for t in range(x.shape[1]):
        a = x[:, t] @ W + h @ U + b
        i, f = np_sigmoid(a[:, :n]), np_sigmoid(a[:, n:2 * n])
        g, o = np.tanh(a[:, 2 * n:3 * n]), np_sigmoid(a[:, 3 * n:])
        c = f * c + i * g
        h = o * np.tanh(c)
        out.append(h)
    return np.stack(out, axis=1)


def np_gru(x, h, W, U, b, reset_after):
    n = h.shape[1]
    b_in, b_rec = (b[0], b[1]) if reset_after else (b, np.zeros_like(b))
    out = []
    for t in range(x.shape[1]):
        xw = x[:, t] @ W + b_in
        z = np_sigmoid(xw[:, :n] + h @ U[:, :n] + b_rec[:n])
        r = np_sigmoid(xw[:, n:2 * n] + h @ U[:, n:2 * n] + b_rec[n:2 * n])
        if reset_after:
            hh = np.tanh(xw[:, 2 * n:] + r * (h @ U[:, 2 * n:] + b_rec[2 * n:]))
        else:
            hh = np.tanh(xw[:, 2 * n:] + (r * h) @ U[:, 2 * n:])
        h = z * h + (1 - z) * hh
        out.append(h)
    return np.stack(out, axis=1)


# ---------------------------------------------------------------------- cases
def rnn_case(rng):
    return [t64(rng, BATCH, STEPS, FEATURES), t64(rng, BATCH, UNITS), t64(rng, FEATURES, UNITS),
            t64(rng, UNITS, UNITS, scale=0.5), t64(rng, UNITS)]


def lstm_case(rng):
    return [t64(rng, BATCH, STEPS, FEATURES), t64(rng, BATCH, UNITS), t64(rng, BATCH, UNITS),
            t64(rng, FEATURES, 4 * UNITS), t64(rng, UNITS, 4 * UNITS, scale=0.5), t64(rng, 4 * UNITS)]


def gru_case(rng, reset_after):
    bias = t64(rng, 2, 3 * UNITS) if reset_after else t64(rng, 3 * UNITS)
    return [t64(rng, BATCH, STEPS, FEATURES), t64(rng, BATCH, UNITS), t64(rng, FEATURES, 3 * UNITS),
            t64(rng, UNITS, 3 * UNITS, scale=0.5), bias]


def arrays(tensors):
    return [t.numpy() for t in tensors]


# ------------------------------------------------------- sequence ops: values
@pytest.mark.parametrize("target", TARGETS)
def test_rnn_sequence_matches_the_equations(target, rng):
    inputs = rnn_case(rng)
    with kernels.use(target):
        out = rnn_sequence(*inputs)
    assert out.shape == (BATCH, STEPS, UNITS)
    np.testing.assert_allclose(out.numpy(), np_rnn(*arrays(inputs)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("target", TARGETS)
def test_lstm_sequence_matches_the_equations(target, rng):
    inputs = lstm_case(rng)
    with kernels.use(target):
        out = lstm_sequence(*inputs)
    assert out.shape == (BATCH, STEPS, UNITS)
    np.testing.assert_allclose(out.numpy(), np_lstm(*arrays(inputs)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("target", TARGETS)
def test_gru_sequence_matches_the_equations(target, reset_after, rng):
    inputs = gru_case(rng, reset_after)
    with kernels.use(target):
        out = gru_sequence(*inputs, reset_after=reset_after)
    assert out.shape == (BATCH, STEPS, UNITS)
    np.testing.assert_allclose(out.numpy(), np_gru(*arrays(inputs), reset_after), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("target", TARGETS)
def test_float32_sequences_keep_their_dtype(target, rng):
    x = minidl.tensor(rng.standard_normal((2, 3, 4)).astype(np.float32))
    with kernels.use(target):
        for layer in (SimpleRNN(2), LSTM(2), GRU(2), GRU(2, reset_after=False)):
            assert layer(x).dtype == np.float32


def test_missing_initial_states_are_zeros(rng):
    x, h0, c0, *weights = lstm_case(rng)
    zeros = np.zeros((BATCH, UNITS))
    np.testing.assert_array_equal(lstm_sequence(x, None, None, *weights).numpy(),
                                  lstm_sequence(x, zeros, zeros, *weights).numpy())
    x, h0, *weights = gru_case(rng, True)
    np.testing.assert_array_equal(gru_sequence(x, None, *weights).numpy(), gru_sequence(x, zeros, *weights).numpy())
    x, h0, *weights = rnn_case(rng)
    np.testing.assert_array_equal(rnn_sequence(x, None, *weights).numpy(), rnn_sequence(x, zeros, *weights).numpy())


# ------------------------------------------------------ cells against sequences
def test_rnn_cell_steps_reproduce_the_sequence(rng):
    x, h, *weights = rnn_case(rng)
    expected = rnn_sequence(x, h, *weights).numpy()
    for t in range(STEPS):
        h = rnn_cell(x[:, t], h, *weights)
        np.testing.assert_allclose(h.numpy(), expected[:, t], rtol=1e-12, atol=1e-12)


def test_lstm_cell_steps_reproduce_the_sequence(rng):
    x, h, c, *weights = lstm_case(rng)
    expected = lstm_sequence(x, h, c, *weights).numpy()
    for t in range(STEPS):
        h, c = lstm_cell(x[:, t], h, c, *weights)
        np.testing.assert_allclose(h.numpy(), expected[:, t], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_cell_steps_reproduce_the_sequence(reset_after, rng):
    x, h, *weights = gru_case(rng, reset_after)
    expected = gru_sequence(x, h, *weights, reset_after=reset_after).numpy()
    for t in range(STEPS):
        h = gru_cell(x[:, t], h, *weights, reset_after=reset_after)
        np.testing.assert_allclose(h.numpy(), expected[:, t], rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ gradchecks
@pytest.mark.parametrize("target", TARGETS)
def test_rnn_sequence_gradcheck(target, rng):
    with kernels.use(target):
        assert gradcheck(rnn_sequence, rnn_case(rng))


@pytest.mark.parametrize("target", TARGETS)
def test_lstm_sequence_gradcheck(target, rng):
    with kernels.use(target):
        assert gradcheck(lstm_sequence, lstm_case(rng))


@pytest.mark.parametrize("activation", ["sigmoid", "hard_sigmoid"])
@pytest.mark.parametrize("target", TARGETS)
def test_lstm_sequence_gradcheck_of_the_last_state(target, activation, rng):
    # The kernels' own path for return_sequences=False: only h_T comes out and back.
    with kernels.use(target):
        assert gradcheck(lambda *a: lstm_sequence(*a, recurrent_activation=activation, return_sequences=False),
                         lstm_case(rng))


@pytest.mark.parametrize("target", TARGETS)
def test_lstm_sequence_under_no_grad_gives_the_same_states(target, rng):
    # Without a graph the kernels keep no states for backward and, for the last state
    # alone, no other step: the values must not change.
    inputs = lstm_case(rng)
    with kernels.use(target):
        every = lstm_sequence(*inputs).numpy()
        with minidl.no_grad():
            np.testing.assert_array_equal(lstm_sequence(*inputs).numpy(), every)
            np.testing.assert_array_equal(lstm_sequence(*inputs, return_sequences=False).numpy(), every[:, -1])


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("target", TARGETS)
def test_gru_sequence_gradcheck(target, reset_after, rng):
    with kernels.use(target):
        assert gradcheck(lambda *a: gru_sequence(*a, reset_after=reset_after), gru_case(rng, reset_after))


def first_step(inputs):
    """The case with x reduced to one step (batch, features): a cell's input."""
    return [t64(np.random.default_rng(1), BATCH, FEATURES)] + inputs[1:]


def test_rnn_cell_gradcheck(rng):
    assert gradcheck(rnn_cell, first_step(rnn_case(rng)))


def test_lstm_cell_gradcheck_of_both_outputs(rng):
    inputs = first_step(lstm_case(rng))
    assert gradcheck(lambda *a: lstm_cell(*a)[0], inputs)
    assert gradcheck(lambda *a: lstm_cell(*a)[1], inputs)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_cell_gradcheck(reset_after, rng):
    assert gradcheck(lambda *a: gru_cell(*a, reset_after=reset_after), first_step(gru_case(rng, reset_after)))


def test_gradcheck_catches_a_wrong_recurrent_gradient(rng, monkeypatch):
    from minidl.autograd import GradcheckError
    from minidl.ops.recurrent import LSTMSequence

    correct = LSTMSequence.backward

    def wrong(ctx, grad):
        grads = list(correct(ctx, grad))
        grads[4] = grads[4] * 1.01  # recurrent_kernel
        return tuple(grads)

    monkeypatch.setattr(LSTMSequence, "backward", staticmethod(wrong))
    with pytest.raises(GradcheckError, match="input 4"):
        gradcheck(lstm_sequence, lstm_case(rng))


# ------------------------------------------------------------ long sequences
@pytest.mark.parametrize("target", TARGETS)
def test_long_sequence_backward_through_cells_and_op_agree(target, rng):
    # 300 steps of cells are ~5,000 graph nodes: the iterative graph walk must not
    # recurse, and the unrolled cells must give the sequence op's gradients.
    steps = 300
    x = minidl.tensor(rng.standard_normal((2, steps, 3)), dtype=np.float64)
    weights = [t64(rng, 3, 8, scale=0.5), t64(rng, 2, 8, scale=0.5), t64(rng, 8, scale=0.1)]
    with kernels.use(target):
        lstm_sequence(x, None, None, *weights)[:, -1].sum().backward()
    op_grads = [w.grad.copy() for w in weights]
    for w in weights:
        w.grad = None
    h = c = np.zeros((2, 2))
    for t in range(steps):
        h, c = lstm_cell(x[:, t], h, c, *weights)
    h.sum().backward()
    for w, expected in zip(weights, op_grads):
        assert np.all(np.isfinite(w.grad))
        np.testing.assert_allclose(w.grad, expected, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------- layers
@pytest.mark.parametrize("layer_class", [SimpleRNN, LSTM, GRU])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_layer_shapes(layer_class, return_sequences, rng):
    layer = layer_class(5, return_sequences=return_sequences)
    x = minidl.tensor(rng.standard_normal((4, 7, 3)).astype(np.float32))
    out = layer(x)
    expected = (4, 7, 5) if return_sequences else (4, 5)
    assert out.shape == expected
    assert layer.compute_output_shape((None, 7, 3)) == (None,) + expected[1:]
    assert [name for name, _ in layer.named_parameters()] == ["kernel", "recurrent_kernel", "bias"]


@pytest.mark.parametrize("make_layer, count", [
    (lambda: LSTM(32), 8320),  # 4 * (32*32 + 32*32 + 32), as Keras reports
    (lambda: GRU(32), 6336),  # 3 * (32*32 + 32*32 + 2*32): two biases with reset_after
    (lambda: GRU(32, reset_after=False), 6240),
    (lambda: SimpleRNN(32), 2080),
])
def test_parameter_counts_equal_keras(make_layer, count):
    layer = make_layer()
    layer.build((None, 75, 32))
    assert layer.count_params() == count


def test_keras_initialisers_and_the_forget_bias():
    lstm = LSTM(4)
    lstm.build((None, 5, 3))
    bias = lstm.bias.numpy()
    np.testing.assert_array_equal(bias[4:8], 1.0)
    np.testing.assert_array_equal(np.delete(bias, np.s_[4:8]), 0.0)
    u = lstm.recurrent_kernel.numpy().astype(np.float64)
    np.testing.assert_allclose(u @ u.T, np.eye(4), atol=1e-5)  # orthogonal rows
    limit = np.sqrt(6 / (3 + 16))
    assert np.all(np.abs(lstm.kernel.numpy()) <= limit)

    plain = LSTM(4, unit_forget_bias=False)
    plain.build((None, 5, 3))
    np.testing.assert_array_equal(plain.bias.numpy(), 0.0)
    gru = GRU(4)
    gru.build((None, 5, 3))
    assert gru.bias.shape == (2, 12) and np.all(gru.bias.numpy() == 0)


@pytest.mark.parametrize("make_layer", [
    lambda: SimpleRNN(2, return_sequences=True),
    lambda: LSTM(2),
    lambda: LSTM(2, return_sequences=True),
    lambda: GRU(2),
    lambda: GRU(2, reset_after=False, return_sequences=True),
])
@pytest.mark.parametrize("target", TARGETS)
def test_layer_gradcheck(make_layer, target, rng, float64):
    layer = make_layer()
    layer.build((None, 3, 3))
    x = t64(rng, 2, 3, 3)
    with kernels.use(target):
        assert gradcheck(lambda x, *p: layer(x), [x] + layer.parameters())


def test_stacked_layers_build_from_shapes_and_regularise(rng):
    model = minidl.Sequential([LSTM(4, return_sequences=True, kernel_regularizer=1e-3), GRU(3), nn.Dense(1)])
    model.build((None, 6, 2))
    assert model.compute_output_shape((None, 6, 2)) == (None, 1)
    assert model(minidl.tensor(rng.standard_normal((5, 6, 2)).astype(np.float32))).shape == (5, 1)
    kernel = model[0].kernel.numpy().astype(np.float64)
    assert model.regularization_loss().item() == pytest.approx(1e-3 * (kernel**2).sum(), rel=1e-5)


@pytest.mark.parametrize("make_layer", [
    lambda: SimpleRNN(3, return_sequences=True, name="rnn"),
    lambda: LSTM(3, unit_forget_bias=False, recurrent_regularizer=0.01),
    lambda: GRU(3, reset_after=False, bias_initializer="ones"),
])
def test_layer_config_round_trip(make_layer, rng):
    layer = make_layer()
    layer.build((None, 4, 2))
    copy = layer_from_config(serialize(layer))
    assert copy.get_config() == layer.get_config()
    copy.build((None, 4, 2))
    copy.load_state_dict(layer.state_dict())
    x = minidl.tensor(rng.standard_normal((2, 4, 2)).astype(np.float32))
    np.testing.assert_array_equal(copy(x).numpy(), layer(x).numpy())


# ----------------------------------------------------------------------- errors
def test_layers_name_the_wrong_input():
    layer = LSTM(2, name="encoder")
    expected = r"encoder: expects input of shape \(batch, time, features\), got shape \(4, 3\)"
    with pytest.raises(ValueError, match=expected):
        layer(minidl.tensor(np.ones((4, 3), np.float32)))
    layer(minidl.tensor(np.ones((1, 2, 3), np.float32)))
    with pytest.raises(ValueError, match="encoder: input has 5 features, the layer expects 3"):
        layer(minidl.tensor(np.ones((1, 2, 5), np.float32)))
    with pytest.raises(ValueError, match="units must be positive"):
        GRU(0)


def test_ops_name_the_disagreement(rng):
    x, h0, c0, W, U, b = lstm_case(rng)
    with pytest.raises(ValueError, match=r"lstm_sequence: input must be \(batch, time, features\)"):
        lstm_sequence(x[:, 0], h0, c0, W, U, b)
    with pytest.raises(ValueError, match="lstm_sequence: input has 3 features, kernel expects 2"):
        lstm_sequence(x, h0, c0, W[:2], U, b)
    with pytest.raises(ValueError, match=r"lstm_sequence: c0 must be \(batch, units\) = \(2, 3\), got \(2, 2\)"):
        lstm_sequence(x, h0, c0[:, :2], W, U, b)
    with pytest.raises(ValueError, match="recurrent_kernel must be"):
        lstm_sequence(x, h0, c0, W, U[:, :6], b)
    with pytest.raises(TypeError, match="lstm_sequence: input, weights and states must share one floating dtype"):
        lstm_sequence(x.astype(np.float32), None, None, W, U, b)
    with pytest.raises(ValueError, match="the input sequence is empty"):
        lstm_sequence(x[:, :0], h0, c0, W, U, b)
    x, h0, W, U, b = gru_case(rng, reset_after=False)
    with pytest.raises(ValueError, match=r"gru_sequence: bias must have shape \(2, 9\), got \(9,\)"):
        gru_sequence(x, h0, W, U, b, reset_after=True)
    with pytest.raises(ValueError, match=r"gru_cell: input must be \(batch, features\)"):
        gru_cell(x, h0, W, U, b, reset_after=False)
