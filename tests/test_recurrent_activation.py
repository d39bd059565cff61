"""recurrent_activation="hard_sigmoid" (Keras 2's clip(0.2 x + 0.5, 0, 1)) through the
recurrent stack: the op's values, the Numba kernels against their NumPy twins in both
activations and dtypes, float64 gradchecks at points away from the kinks (with gates
both inside the linear part and clipped), cells against sequence ops, and the layers'
config. The Numba CUDA kernels' two activations are tests/test_cuda_recurrent.py's."""
import numpy as np
import pytest

import minidl
from minidl import kernels
from minidl import functional as F
from minidl.autograd import gradcheck
from minidl.kernels import reference_kernel
from minidl.nn.module import layer_from_config, serialize
from minidl.nn.recurrent import GRU, LSTM
from minidl.ops.recurrent import gru_cell, gru_sequence, lstm_cell, lstm_sequence
from test_recurrent_kernels import backward_arguments, forward_case, numba_kernel, tolerance

ACTIVATIONS = ["sigmoid", "hard_sigmoid"]
GATED_CELLS = ["lstm", "gru_reset_after", "gru_reset_before"]
KINKS = (-2.5, 2.5)  # where Keras 2's hard_sigmoid stops being linear
BATCH, STEPS, FEATURES, UNITS = 2, 4, 3, 3


# ------------------------------------------------------------------------ the op
def test_hard_sigmoid_is_keras_2s_clip():
    x = np.array([-10.0, -2.5, -1.0, 0.0, 0.7, 2.5, 10.0])
    got = F.hard_sigmoid(minidl.tensor(x, dtype=np.float64)).numpy()
    np.testing.assert_allclose(got, np.clip(0.2 * x + 0.5, 0.0, 1.0), rtol=0, atol=1e-15)
    np.testing.assert_allclose(reference_kernel("recurrent", "hard_sigmoid")(x), got, rtol=0, atol=1e-15)


def test_hard_sigmoid_gradient_is_a_fifth_inside_and_zero_outside():
    x = minidl.tensor([-4.0, -2.0, 0.3, 2.0, 4.0], dtype=np.float64, requires_grad=True)
    F.hard_sigmoid(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.2, 0.2, 0.2, 0.0])
    assert gradcheck(F.hard_sigmoid, [minidl.tensor([-3.1, -1.2, 0.4, 2.2, 2.9], dtype=np.float64,
                                                    requires_grad=True)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gate_derivative_comes_from_the_gate_value(dtype):
    s = np.array([0.0, 0.25, 0.5, 1.0], dtype=dtype)
    derivative = reference_kernel("recurrent", "gate_derivative")
    np.testing.assert_array_equal(derivative(s, "sigmoid"), s * (1 - s))
    np.testing.assert_array_equal(derivative(s, "hard_sigmoid"), np.array([0.0, 0.2, 0.2, 0.0], dtype=dtype))
    assert derivative(s, "hard_sigmoid").dtype == dtype


# ----------------------------------------------------------------- kernel twins
def assert_twins_agree(cell, activation, dtype, rng, scale=2.0):
    """Numba against reference, forward then backward (both backward kernels get the
    reference forward's outputs). `scale` spreads the pre-activations so that many
    hard_sigmoid gates are clipped."""
    prefix, args, grad_shape = forward_case(cell, rng, dtype, scale=scale)
    expected = reference_kernel("recurrent", f"{prefix}_forward")(*args, recurrent_activation=activation)
    got = numba_kernel(f"{prefix}_forward")(*args, recurrent_activation=activation)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == dtype and g.shape == e.shape
        np.testing.assert_allclose(g, e, **tolerance(dtype))
    grad_hs = rng.standard_normal(grad_shape).astype(dtype)
    backward_args = backward_arguments(prefix, args, expected, grad_hs)
    expected_grads = reference_kernel("recurrent", f"{prefix}_backward")(*backward_args, recurrent_activation=activation)
    got_grads = numba_kernel(f"{prefix}_backward")(*backward_args, recurrent_activation=activation)
    for g, e in zip(got_grads, expected_grads, strict=True):
        assert g.dtype == dtype and g.shape == e.shape
        np.testing.assert_allclose(g, e, **tolerance(dtype))
    return expected


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("cell", GATED_CELLS)
def test_numba_kernels_match_reference(cell, activation, dtype, rng):
    outputs = assert_twins_agree(cell, activation, dtype, rng)
    if activation == "hard_sigmoid":
        # The case reaches both sides of the clip: saturated gates and linear ones.
        units = forward_case(cell, rng, dtype)[1][1].shape[1]
        gates = outputs[-1]
        sigmoid_gates = np.concatenate([gates[..., :units], gates[..., units:2 * units]] +
                                       ([gates[..., 3 * units:]] if cell == "lstm" else []), axis=-1)
        assert np.any((sigmoid_gates == 0) | (sigmoid_gates == 1))
        assert np.any((sigmoid_gates > 0) & (sigmoid_gates < 1))


@pytest.mark.parametrize("target", ["numpy", "numba", "cudasim"])
@pytest.mark.parametrize("name", ["lstm_forward", "lstm_backward", "gru_forward", "gru_backward"])
def test_an_unknown_recurrent_activation_is_a_value_error_in_every_kernel(name, target):
    if target == "cudasim":  # the CUDA kernels, on NumPy arrays under the simulator (tests/conftest.py)
        kernel = kernels.own_kernel("cudasim", "recurrent", name)
    elif target == "numba":
        kernel = numba_kernel(name)
    else:
        kernel = reference_kernel("recurrent", name)
    prefix, args, _ = forward_case("lstm" if name.startswith("lstm") else "gru_reset_after",
                                   np.random.default_rng(0), np.float64)
    if name.endswith("_backward"):
        outputs = reference_kernel("recurrent", f"{prefix}_forward")(*args)
        args = backward_arguments(prefix, args, outputs, np.zeros_like(outputs[0]))
    with pytest.raises(ValueError, match="unknown recurrent_activation 'relu': choose one of sigmoid, hard_sigmoid"):
        kernel(*args, recurrent_activation="relu")


# ------------------------------------------------------------ ops: gradchecks
def t64(rng, *shape, scale=1.0):
    return minidl.tensor(scale * rng.standard_normal(shape), dtype=np.float64, requires_grad=True)


def gate_pre_activations(cell, inputs):
    """The pre-activations of the sigmoid-like gates at every step (LSTM i, f, o; GRU z,
    r), from the sequence's own hidden and cell states, in NumPy."""
    x, h0, *rest = [t.numpy() for t in inputs]
    if cell == "lstm":
        c0, kernel, recurrent_kernel, bias = rest
        hs = lstm_sequence(*inputs, recurrent_activation="hard_sigmoid").numpy()
    else:
        kernel, recurrent_kernel, bias = rest
        reset_after = cell == "gru_reset_after"
        hs = gru_sequence(*inputs, reset_after=reset_after, recurrent_activation="hard_sigmoid").numpy()
    units = h0.shape[1]
    h_prev = np.concatenate([h0[:, None], hs[:, :-1]], axis=1)
    if cell == "lstm":
        a = x @ kernel + h_prev @ recurrent_kernel + bias
        return np.concatenate([a[..., :2 * units], a[..., 3 * units:]], axis=-1)
    input_bias, recurrent_bias = (bias[0], bias[1]) if cell == "gru_reset_after" else (bias, 0 * bias)
    return (x @ kernel + input_bias + h_prev @ recurrent_kernel + recurrent_bias)[..., :2 * units]


def gated_case(cell, seed):
    """Inputs whose gate pre-activations lie at least 0.05 from hard_sigmoid's kinks
    (finite differences then never cross one), with gates on both sides of the clip:
    the first seed from `seed` on that gives such a case."""
    for attempt in range(seed, seed + 100):
        rng = np.random.default_rng(attempt)
        gates = 4 if cell == "lstm" else 3
        bias = t64(rng, 2, 3 * UNITS) if cell == "gru_reset_after" else t64(rng, gates * UNITS)
        inputs = [t64(rng, BATCH, STEPS, FEATURES, scale=2.0), t64(rng, BATCH, UNITS)]
        if cell == "lstm":
            inputs.append(t64(rng, BATCH, UNITS))
        inputs += [t64(rng, FEATURES, gates * UNITS), t64(rng, UNITS, gates * UNITS, scale=0.5), bias]
        a = gate_pre_activations(cell, inputs)
        distance = np.min(np.abs(a[..., None] - np.array(KINKS)), axis=-1)
        if distance.min() > 0.05 and np.any(np.abs(a) > 2.5) and np.any(np.abs(a) < 2.5):
            return inputs
    raise AssertionError(f"no {cell} case away from the kinks")


@pytest.mark.parametrize("target", ["numpy", "numba"])
@pytest.mark.parametrize("cell", GATED_CELLS)
def test_sequence_gradcheck_with_hard_sigmoid_gates(cell, target):
    inputs = gated_case(cell, seed=10)
    if cell == "lstm":
        def run(*tensors):
            return lstm_sequence(*tensors, recurrent_activation="hard_sigmoid")
    else:
        def run(*tensors):
            return gru_sequence(*tensors, reset_after=cell == "gru_reset_after", recurrent_activation="hard_sigmoid")
    with kernels.use(target):
        assert gradcheck(run, inputs)


@pytest.mark.parametrize("cell", GATED_CELLS)
def test_cell_gradcheck_with_hard_sigmoid_gates(cell):
    inputs = gated_case(cell, seed=20)
    step = [inputs[0][:, 0]] + inputs[1:]  # the first step: its pre-activations were checked
    if cell == "lstm":
        def run(*tensors):
            return F.add(*lstm_cell(*tensors, recurrent_activation="hard_sigmoid"))
    else:
        def run(*tensors):
            return gru_cell(*tensors, reset_after=cell == "gru_reset_after", recurrent_activation="hard_sigmoid")
    assert gradcheck(run, [minidl.tensor(t.numpy(), dtype=np.float64, requires_grad=True) for t in step])


@pytest.mark.parametrize("target", ["numpy", "numba"])
@pytest.mark.parametrize("cell", GATED_CELLS)
def test_cell_steps_reproduce_the_hard_sigmoid_sequence(cell, target):
    inputs = gated_case(cell, seed=30)
    x, h = inputs[0], inputs[1]
    with kernels.use(target):
        if cell == "lstm":
            c, weights = inputs[2], inputs[3:]
            expected = lstm_sequence(x, h, c, *weights, recurrent_activation="hard_sigmoid")
            for t in range(STEPS):
                h, c = lstm_cell(x[:, t], h, c, *weights, recurrent_activation="hard_sigmoid")
        else:
            weights, reset_after = inputs[2:], cell == "gru_reset_after"
            expected = gru_sequence(x, h, *weights, reset_after=reset_after, recurrent_activation="hard_sigmoid")
            for t in range(STEPS):
                h = gru_cell(x[:, t], h, *weights, reset_after=reset_after, recurrent_activation="hard_sigmoid")
    np.testing.assert_allclose(h.numpy(), expected.numpy()[:, -1], rtol=1e-12, atol=1e-12)
    sigmoid = lstm_sequence(*inputs) if cell == "lstm" else gru_sequence(*inputs, reset_after=cell == "gru_reset_after")
    assert not np.allclose(sigmoid.numpy(), expected.numpy())  # the activation did change something


def test_ops_name_an_unknown_recurrent_activation(rng):
    x = rng.standard_normal((BATCH, STEPS, FEATURES))
    weights = (rng.standard_normal((FEATURES, 4 * UNITS)), rng.standard_normal((UNITS, 4 * UNITS)),
               np.zeros(4 * UNITS))
    with pytest.raises(ValueError, match="lstm_sequence: unknown recurrent_activation 'hard_sigmoid_keras3'"):
        lstm_sequence(x, None, None, *weights, recurrent_activation="hard_sigmoid_keras3")
    with pytest.raises(ValueError, match="lstm_cell: unknown recurrent_activation 'tanh'"):
        lstm_cell(x[:, 0], np.zeros((BATCH, UNITS)), np.zeros((BATCH, UNITS)), *weights, recurrent_activation="tanh")


# ---------------------------------------------------------------------- layers
@pytest.mark.parametrize("make_layer", [
    lambda activation: LSTM(4, return_sequences=True, recurrent_activation=activation),
    lambda activation: GRU(4, recurrent_activation=activation),
    lambda activation: GRU(4, reset_after=False, recurrent_activation=activation),
], ids=["lstm", "gru", "gru_reset_before"])
def test_layer_config_round_trip_keeps_the_activation(make_layer, rng):
    layer = make_layer("hard_sigmoid")
    x = minidl.tensor(rng.standard_normal((2, 5, 3)) * 3, dtype=np.float32)
    out = layer(x)
    copy = layer_from_config(serialize(layer))
    assert copy.recurrent_activation == "hard_sigmoid"
    assert copy.get_config() == layer.get_config()
    copy.build(x.shape)
    for (name, p), (_, q) in zip(layer.named_parameters(), copy.named_parameters(), strict=True):
        q.data = p.data.copy()
    np.testing.assert_array_equal(copy(x).numpy(), out.numpy())
    default = make_layer("sigmoid")
    default.build(x.shape)
    for p, q in zip(layer.parameters(), default.parameters(), strict=True):
        q.data = p.data.copy()
    assert not np.allclose(default(x).numpy(), out.numpy())


def test_a_config_without_recurrent_activation_loads_as_sigmoid():
    config = serialize(LSTM(3))
    del config["config"]["recurrent_activation"]  # as saved before the option existed
    assert layer_from_config(config).recurrent_activation == "sigmoid"


@pytest.mark.parametrize("layer_class", [LSTM, GRU])
def test_layers_name_an_unknown_recurrent_activation(layer_class):
    with pytest.raises(ValueError, match=f"{layer_class.__name__}: unknown recurrent_activation 'relu': "
                                         "choose one of sigmoid, hard_sigmoid"):
        layer_class(3, recurrent_activation="relu")
