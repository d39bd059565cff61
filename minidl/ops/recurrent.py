"""Recurrent ops: SimpleRNN, LSTM and GRU, as one-step cells and as whole-sequence ops.

Conventions (Keras'): activation tanh, weights
    kernel (features, G*units), recurrent_kernel (units, G*units), bias (G*units,)
with G = 1 (SimpleRNN), 4 (LSTM, gate order i, f, c, o) or 3 (GRU, gate order z, r, h;
with reset_after=True, Keras' default, the bias is (2, 3*units): input bias, recurrent
bias). The equations are written out in each function's docstring. The LSTM's and
GRU's gates take `recurrent_activation`: "sigmoid" (the default, Keras' since 2.3.0) or
"hard_sigmoid", Keras 2's clip(0.2 x + 0.5, 0, 1), the default of the Keras 2 versions
before and so of models trained with them (Keras 3 changed hard_sigmoid's slope to 1/6;
minidl does not offer that form).

Two ways to run them:
- cells (`rnn_cell`, `lstm_cell`, `gru_cell`): one time step composed from primitives
  (matmul, sigmoid, tanh, slicing), so they need no backward of their own; for custom
  recurrences in a Python loop, and the oracle the sequence ops are tested against.
- sequence ops (`rnn_sequence`, `lstm_sequence`, `gru_sequence`): one Function for a whole
  (batch, time, features) sequence, the fast path the layers use. The input projection
  x_t @ kernel + bias of every step is one matrix product before the loop; the loop
  (recurrent products and gate math) is one kernel call, `kernels/*/recurrent.py`, and so
  is backprop through time, which returns d loss / d(projection) from which the
  gradients of x, kernel and bias are again single matrix products.
Initial states default to zeros.
"""
from minidl.autograd import Function, Tensor, as_tensor
from minidl.backend import get_array_module
from minidl.kernels import get_kernel
from minidl.ops.activation import hard_sigmoid, sigmoid, tanh

#: The gate activations of the LSTM and GRU by name, as the cells compose them.
RECURRENT_ACTIVATIONS = {"sigmoid": sigmoid, "hard_sigmoid": hard_sigmoid}


# ------------------------------------------------------------------------ checking
def _check_inputs(op, x, kernel, recurrent_kernel, bias, gates, sequence=True, split_bias=False):
    """The number of units, read from the kernel; ValueError/TypeError naming `op` when
    the shapes or dtypes of the input and the weights disagree."""
    expected = "(batch, time, features)" if sequence else "(batch, features)"
    if x.ndim != (3 if sequence else 2):
        raise ValueError(f"{op}: input must be {expected}, got shape {x.shape}")
    if sequence and x.shape[1] == 0:
        raise ValueError(f"{op}: the input sequence is empty (time axis of length 0)")
    if kernel.ndim != 2 or kernel.shape[1] % gates:
        raise ValueError(f"{op}: kernel must be (features, {gates} * units), got shape {kernel.shape}")
    units = kernel.shape[1] // gates
    if x.shape[-1] != kernel.shape[0]:
        raise ValueError(f"{op}: input has {x.shape[-1]} features, kernel expects {kernel.shape[0]}")
    if recurrent_kernel.shape != (units, gates * units):
        raise ValueError(
            f"{op}: recurrent_kernel must be (units, {gates} * units) = {(units, gates * units)} "
            f"for a kernel of shape {kernel.shape}, got {recurrent_kernel.shape}"
        )
    bias_shape = (2, gates * units) if split_bias else (gates * units,)
    if bias.shape != bias_shape:
        raise ValueError(f"{op}: bias must have shape {bias_shape}, got {bias.shape}")
    _check_dtypes(op, input=x, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias)
    return units


def check_recurrent_activation(owner, recurrent_activation):
    """`recurrent_activation` when it is a known name; a ValueError naming `owner` (an op
    or a layer) otherwise."""
    if recurrent_activation not in RECURRENT_ACTIVATIONS:
        raise ValueError(f"{owner}: unknown recurrent_activation {recurrent_activation!r}: "
                         f"choose one of {', '.join(RECURRENT_ACTIVATIONS)}")
    return recurrent_activation


def _check_states(op, x, units, **states):
    for name, state in states.items():
        if state.shape != (x.shape[0], units):
            raise ValueError(f"{op}: {name} must be (batch, units) = {(x.shape[0], units)}, got {state.shape}")
    _check_dtypes(op, input=x, **states)


def _check_dtypes(op, **tensors):
    # The kernels multiply these arrays together: one floating dtype, no silent upcast.
    dtypes = {name: t.dtype for name, t in tensors.items()}
    if len(set(dtypes.values())) > 1 or tensors["input"].dtype.kind != "f":
        listed = ", ".join(f"{name} {dtype}" for name, dtype in dtypes.items())
        raise TypeError(f"{op}: input, weights and states must share one floating dtype, got {listed}")


def _initial_state(state, x, units):
    """The given state as a Tensor, or zeros (batch, units) of x's dtype and device."""
    if state is not None:
        return as_tensor(state, like=x)
    xp = get_array_module(x.data)
    return Tensor(xp.zeros((x.shape[0], units), dtype=x.dtype))


def _tensors(*values):
    first = as_tensor(values[0])
    return [first] + [as_tensor(v, like=first) for v in values[1:]]


# ------------------------------------------------------------- input projection
def _project(x, kernel, bias):
    """x (B, T, D) -> time-major x (T, B, D) and projected (T, B, G*units) =
    x_t @ kernel + bias for every step, as one (T*B, D) @ (D, G*units) product."""
    xp = get_array_module(x)
    steps, batch = x.shape[1], x.shape[0]
    x_tm = xp.ascontiguousarray(x.transpose(1, 0, 2))
    projected = x_tm.reshape(steps * batch, -1) @ kernel + bias
    return x_tm, projected.reshape(steps, batch, -1)


def _project_backward(ctx, x_tm, kernel, grad_projected):
    """Gradients of x (B, T, D), kernel and input bias from d loss / d projected:
    grad_x = g @ kernel^T, grad_kernel = x^T @ g, grad_bias = sum of g (on T*B rows)."""
    flat = grad_projected.reshape(-1, grad_projected.shape[-1])
    x_flat = x_tm.reshape(flat.shape[0], -1)
    grad_x = None
    if ctx.needs_input_grad[0]:
        grad_x = (flat @ kernel.T).reshape(x_tm.shape).transpose(1, 0, 2)
    return grad_x, x_flat.T @ flat, flat.sum(axis=0)


def _time_major(grad):
    """(B, T, units) -> a (T, B, units) view, the kernels' layout."""
    return grad.transpose(1, 0, 2)


# ------------------------------------------------------------------ SimpleRNN
class RNNSequence(Function):
    """h_t = tanh(x_t @ W + h_{t-1} @ U + b) over x (B, T, D) -> hs (B, T, units).
    Backprop through time: d a_t = (g_t + d a_{t+1} @ U^T) (1 - h_t^2), then
    grad_W = sum_t x_t^T d a_t, grad_U = sum_t h_{t-1}^T d a_t, grad_b = sum_t d a_t,
    grad_x_t = d a_t @ W^T, grad_h0 = d a_0 @ U^T."""

    @staticmethod
    def forward(ctx, x, h0, kernel, recurrent_kernel, bias):
        x_tm, projected = _project(x, kernel, bias)
        hs = get_kernel("recurrent", "rnn_forward", projected)(projected, h0, recurrent_kernel)
        ctx.save(x_tm, h0, kernel, recurrent_kernel, hs)
        return hs.transpose(1, 0, 2)

    @staticmethod
    def backward(ctx, grad):
        x_tm, h0, kernel, recurrent_kernel, hs = ctx.saved
        backward = get_kernel("recurrent", "rnn_backward", grad)
        grad_projected, grad_h0, grad_recurrent = backward(_time_major(grad), hs, h0, recurrent_kernel)
        grad_x, grad_kernel, grad_bias = _project_backward(ctx, x_tm, kernel, grad_projected)
        return grad_x, grad_h0, grad_kernel, grad_recurrent, grad_bias


def rnn_sequence(x, h0, kernel, recurrent_kernel, bias):
    """SimpleRNN over a sequence: x (batch, time, features), h0 (batch, units) or None
    for zeros -> the hidden states (batch, time, units). Weights as in `rnn_cell`."""
    x, kernel, recurrent_kernel, bias = _tensors(x, kernel, recurrent_kernel, bias)
    units = _check_inputs("rnn_sequence", x, kernel, recurrent_kernel, bias, gates=1)
    h0 = _initial_state(h0, x, units)
    _check_states("rnn_sequence", x, units, h0=h0)
    return RNNSequence.apply(x, h0, kernel, recurrent_kernel, bias)


def rnn_cell(x_t, h, kernel, recurrent_kernel, bias):
    """One SimpleRNN step, composed from primitives: h_new = tanh(x_t @ W + h @ U + b).
    x_t (batch, features), h (batch, units), kernel W (features, units),
    recurrent_kernel U (units, units), bias b (units,) -> h_new (batch, units)."""
    x_t, h, kernel, recurrent_kernel, bias = _tensors(x_t, h, kernel, recurrent_kernel, bias)
    units = _check_inputs("rnn_cell", x_t, kernel, recurrent_kernel, bias, gates=1, sequence=False)
    _check_states("rnn_cell", x_t, units, h=h)
    return tanh(x_t @ kernel + h @ recurrent_kernel + bias)


# ----------------------------------------------------------------------- LSTM
class LSTMSequence(Function):
    """The LSTM of `lstm_cell` over x (B, T, D) -> hs (B, T, units), or the last h
    (B, units) with return_sequences=False; the whole sequence in one kernel call each
    way. Backprop through time (kernels' lstm_backward): with dh_t = g_t + d a_{t+1} @ U^T
    and dc_t = dh_t o (1 - tanh(c_t)^2) + dc_{t+1} f_{t+1}, d a_t = [dc g s'(i),
    dc c_{t-1} s'(f), dc i (1-g^2), dh tanh(c_t) s'(o)] with s' the recurrent
    activation's derivative; grad_W = sum_t x_t^T d a_t, grad_U = sum_t h_{t-1}^T d a_t,
    grad_b = sum_t d a_t, grad_x_t = d a_t @ W^T, grad_h0 = d a_0 @ U^T, grad_c0 = dc_0 f_0.
    Under no_grad the kernel keeps no states for backward (nor, for the last h alone,
    the other steps)."""

    @staticmethod
    def forward(ctx, x, h0, c0, kernel, recurrent_kernel, bias, recurrent_activation, return_sequences):
        save = any(ctx.needs_input_grad)
        forward = get_kernel("recurrent", "lstm_forward", x)
        hs, cs, gates = forward(x, h0, c0, kernel, recurrent_kernel, bias, recurrent_activation,
                                return_sequences, save)
        if save:
            ctx.save(x, h0, c0, kernel, recurrent_kernel, hs, cs, gates)
            ctx.recurrent_activation = recurrent_activation
        return hs.transpose(1, 0, 2) if return_sequences else hs[-1]

    @staticmethod
    def backward(ctx, grad):
        x, h0, c0, kernel, recurrent_kernel, hs, cs, gates = ctx.saved
        grad_hs = grad.transpose(1, 0, 2) if grad.ndim == 3 else grad[None]  # time-major
        backward = get_kernel("recurrent", "lstm_backward", grad)
        return backward(grad_hs, x, hs, cs, gates, h0, c0, kernel, recurrent_kernel, ctx.recurrent_activation)


def lstm_sequence(x, h0, c0, kernel, recurrent_kernel, bias, recurrent_activation="sigmoid", return_sequences=True):
    """LSTM over a sequence: x (batch, time, features), h0 and c0 (batch, units) or None
    for zeros -> the hidden states (batch, time, units), or the last one (batch, units)
    with return_sequences=False. Weights as in `lstm_cell`; recurrent_activation
    "sigmoid" (Keras' default) or "hard_sigmoid" (Keras 2's clip(0.2 x + 0.5, 0, 1)) for
    the gates i, f, o."""
    x, kernel, recurrent_kernel, bias = _tensors(x, kernel, recurrent_kernel, bias)
    units = _check_inputs("lstm_sequence", x, kernel, recurrent_kernel, bias, gates=4)
    check_recurrent_activation("lstm_sequence", recurrent_activation)
    h0, c0 = _initial_state(h0, x, units), _initial_state(c0, x, units)
    _check_states("lstm_sequence", x, units, h0=h0, c0=c0)
    return LSTMSequence.apply(x, h0, c0, kernel, recurrent_kernel, bias, recurrent_activation=recurrent_activation,
                              return_sequences=bool(return_sequences))


def lstm_cell(x_t, h, c, kernel, recurrent_kernel, bias, recurrent_activation="sigmoid"):
    """One LSTM step (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al.
    2000), Keras' gate order i, f, c, o, composed from primitives, with s the recurrent
    activation (sigmoid, or Keras 2's hard_sigmoid clip(0.2 a + 0.5, 0, 1)):

        [a_i, a_f, a_g, a_o] = x_t @ W + h @ U + b
        i = s(a_i), f = s(a_f), g = tanh(a_g), o = s(a_o)
        c_new = f * c + i * g,   h_new = o * tanh(c_new)

    x_t (batch, features), h and c (batch, units), kernel W (features, 4*units),
    recurrent_kernel U (units, 4*units), bias b (4*units,) -> (h_new, c_new).
    """
    gate = RECURRENT_ACTIVATIONS[check_recurrent_activation("lstm_cell", recurrent_activation)]
    x_t, h, c, kernel, recurrent_kernel, bias = _tensors(x_t, h, c, kernel, recurrent_kernel, bias)
    units = _check_inputs("lstm_cell", x_t, kernel, recurrent_kernel, bias, gates=4, sequence=False)
    _check_states("lstm_cell", x_t, units, h=h, c=c)
    a = x_t @ kernel + h @ recurrent_kernel + bias
    i = gate(a[:, :units])
    f = gate(a[:, units:2 * units])
    g = tanh(a[:, 2 * units:3 * units])
    o = gate(a[:, 3 * units:])
    c_new = f * c + i * g
    return o * tanh(c_new), c_new


# ------------------------------------------------------------------------ GRU
class GRUSequence(Function):
    """The GRU of `gru_cell` over x (B, T, D) -> hs (B, T, units); `bias` is the input
    bias (3*units,) and `recurrent_bias` (3*units,) is added to h @ U (zeros when
    reset_after=False). Backprop through time (kernels' gru_backward): with
    dh_t = g_t + (from step t+1), d x_h = dh (1-z)(1-hh^2), d a_z = dh (h_{t-1} - hh) z(1-z),
    d a_r = dr r(1-r); grad_W = sum_t x_t^T [d a_z, d a_r, d x_h], grad_U from h_{t-1}
    (and r h_{t-1} for U_h when reset_after=False), grad_x_t = [d a_z, d a_r, d x_h] @ W^T.
    For hard_sigmoid gates z(1-z), r(1-r) become 0.2 inside the linear part, else 0."""

    @staticmethod
    def forward(ctx, x, h0, kernel, recurrent_kernel, bias, recurrent_bias, reset_after, recurrent_activation):
        x_tm, projected = _project(x, kernel, bias)
        forward = get_kernel("recurrent", "gru_forward", projected)
        hs, gates = forward(projected, h0, recurrent_kernel, recurrent_bias, reset_after,
                            recurrent_activation=recurrent_activation)
        ctx.save(x_tm, h0, kernel, recurrent_kernel, hs, gates)
        ctx.reset_after = reset_after
        ctx.recurrent_activation = recurrent_activation
        return hs.transpose(1, 0, 2)

    @staticmethod
    def backward(ctx, grad):
        x_tm, h0, kernel, recurrent_kernel, hs, gates = ctx.saved
        backward = get_kernel("recurrent", "gru_backward", grad)
        grad_projected, grad_h0, grad_recurrent, grad_recurrent_bias = backward(
            _time_major(grad), hs, gates, h0, recurrent_kernel, ctx.reset_after,
            recurrent_activation=ctx.recurrent_activation)
        grad_x, grad_kernel, grad_bias = _project_backward(ctx, x_tm, kernel, grad_projected)
        return grad_x, grad_h0, grad_kernel, grad_recurrent, grad_bias, grad_recurrent_bias


def gru_sequence(x, h0, kernel, recurrent_kernel, bias, reset_after=True, recurrent_activation="sigmoid"):
    """GRU over a sequence: x (batch, time, features), h0 (batch, units) or None for
    zeros -> the hidden states (batch, time, units). Weights, bias and
    recurrent_activation as in `gru_cell`."""
    check_recurrent_activation("gru_sequence", recurrent_activation)
    x, kernel, recurrent_kernel, bias = _tensors(x, kernel, recurrent_kernel, bias)
    units = _check_inputs("gru_sequence", x, kernel, recurrent_kernel, bias, gates=3, split_bias=reset_after)
    h0 = _initial_state(h0, x, units)
    _check_states("gru_sequence", x, units, h0=h0)
    if reset_after:
        input_bias, recurrent_bias = bias[0], bias[1]
    else:
        # Keras' single bias goes with the input; the kernel adds a zero recurrent one.
        xp = get_array_module(x.data)
        input_bias, recurrent_bias = bias, Tensor(xp.zeros(3 * units, dtype=x.dtype))
    return GRUSequence.apply(x, h0, kernel, recurrent_kernel, input_bias, recurrent_bias,
                             reset_after=bool(reset_after), recurrent_activation=recurrent_activation)


def gru_cell(x_t, h, kernel, recurrent_kernel, bias, reset_after=True, recurrent_activation="sigmoid"):
    """One GRU step (Cho et al. 2014) in Keras' form, gate order z, r, h, composed from
    primitives. With [x_z, x_r, x_h] = x_t @ W + b_in and s the recurrent activation
    (sigmoid, or Keras 2's hard_sigmoid clip(0.2 a + 0.5, 0, 1)):

        z = s(x_z + h @ U_z + b_rz),  r = s(x_r + h @ U_r + b_rr)
        reset_after=True  (Keras' default):  hh = tanh(x_h + r * (h @ U_h + b_rh))
        reset_after=False (the paper's):     hh = tanh(x_h + (r * h) @ U_h)
        h_new = z * h + (1 - z) * hh

    x_t (batch, features), h (batch, units), kernel W (features, 3*units),
    recurrent_kernel U (units, 3*units); bias (2, 3*units) = [b_in, b_r] when
    reset_after, else (3*units,) = b_in with no recurrent bias -> h_new (batch, units).
    """
    gate = RECURRENT_ACTIVATIONS[check_recurrent_activation("gru_cell", recurrent_activation)]
    x_t, h, kernel, recurrent_kernel, bias = _tensors(x_t, h, kernel, recurrent_kernel, bias)
    units = _check_inputs("gru_cell", x_t, kernel, recurrent_kernel, bias, gates=3, sequence=False,
                          split_bias=reset_after)
    _check_states("gru_cell", x_t, units, h=h)
    if reset_after:
        projected = x_t @ kernel + bias[0]
        recurrent = h @ recurrent_kernel + bias[1]
        z = gate(projected[:, :units] + recurrent[:, :units])
        r = gate(projected[:, units:2 * units] + recurrent[:, units:2 * units])
        hh = tanh(projected[:, 2 * units:] + r * recurrent[:, 2 * units:])
    else:
        projected = x_t @ kernel + bias
        zr = gate(projected[:, :2 * units] + h @ recurrent_kernel[:, :2 * units])
        z, r = zr[:, :units], zr[:, units:]
        hh = tanh(projected[:, 2 * units:] + (r * h) @ recurrent_kernel[:, 2 * units:])
    return z * h + (1 - z) * hh
