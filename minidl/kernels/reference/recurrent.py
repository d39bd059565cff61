"""The time loops of SimpleRNN, LSTM and GRU and their backprop through time, in plain
NumPy (the array module comes from the inputs, so they also run on CuPy).

Every kernel works *time-major*: a step's states `hs[t]` are one contiguous block. The
LSTM kernels take the whole op: the batch-major input x (batch, time, features), the
initial states and the three weights, and return every gradient (see lstm_forward), so
a target is free to fuse the input product into its time loop (the Numba one does). The
SimpleRNN and GRU kernels take the input projection, which the op computes for all
steps at once with one matrix product before the loop:

    projected (time, batch, G*units) = x_t @ kernel + bias, for every t
    h0, c0    (batch, units)          initial states
    recurrent_kernel (units, G*units)

so the loop itself only does the per-step recurrent product h @ recurrent_kernel and the
gate math; time-major slices `projected[t]` are contiguous. The gradient of the
projection comes back as `grad_projected` (time, batch, G*units), from which the op gets
the gradients of x, kernel and bias with matrix products outside the loop.

Equations follow Keras (activation tanh, gate order LSTM i, f, c, o and GRU z, r, h).
The gates' activation, `recurrent_activation`, is "sigmoid" (Keras' default since 2.3.0)
or "hard_sigmoid", Keras 2's piecewise-linear clip(0.2 x + 0.5, 0, 1), the default before
(Keras 3 changed hard_sigmoid's slope to 1/6, clip(x / 6 + 0.5, 0, 1); minidl does not
offer that form).
Every LSTM and GRU kernel takes it as a trailing keyword argument; backward derives the
gate's derivative from the saved gate value (`gate_derivative`). `sigmoid` is evaluated
as 1 / (1 + e^-|x|) and mirrored for x < 0 so e^x never overflows.
"""
from minidl.backend import get_array_module


def sigmoid(x):
    """1 / (1 + e^-x) without overflow: e^-|x| is at most 1."""
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def hard_sigmoid(x):
    """Keras 2's hard_sigmoid: clip(0.2 x + 0.5, 0, 1), linear on -2.5 < x < 2.5."""
    xp = get_array_module(x)
    return xp.clip(0.2 * x + 0.5, 0, 1).astype(x.dtype, copy=False)


GATE_ACTIVATIONS = {"sigmoid": sigmoid, "hard_sigmoid": hard_sigmoid}


def gate_activation(recurrent_activation):
    """The gate activation function named `recurrent_activation`."""
    try:
        return GATE_ACTIVATIONS[recurrent_activation]
    except KeyError:
        raise ValueError(f"unknown recurrent_activation {recurrent_activation!r}: "
                         f"choose one of {', '.join(GATE_ACTIVATIONS)}") from None


def gate_derivative(s, recurrent_activation):
    """d gate / d pre-activation from the gate value s: sigmoid s (1 - s); hard_sigmoid
    0.2 where 0 < s < 1 and 0 where it is clipped."""
    if recurrent_activation == "sigmoid":
        return s * (1 - s)
    gate_activation(recurrent_activation)  # an unknown name is a ValueError
    xp = get_array_module(s)
    return xp.where((s > 0) & (s < 1), 0.2, 0.0).astype(s.dtype, copy=False)


def previous_states(states, initial):
    """(time, batch, units): the state entering each step, h_{t-1}, with h_{-1} = initial."""
    xp = get_array_module(states, initial)
    return xp.concatenate([initial[None], states[:-1]], axis=0)


def flat_product(a, b):
    """sum over time and batch of a[t]^T @ b[t]: (T, B, m), (T, B, n) -> (m, n), one
    matrix product on the flattened (T*B) axis instead of T small ones in the loop."""
    return a.reshape(-1, a.shape[-1]).T @ b.reshape(-1, b.shape[-1])


# ------------------------------------------------------------------------- SimpleRNN
def rnn_forward(projected, h0, recurrent_kernel):
    """h_t = tanh(projected_t + h_{t-1} @ U) -> hs (time, batch, units)."""
    xp = get_array_module(projected)
    hs = xp.empty((projected.shape[0],) + h0.shape, dtype=projected.dtype)
    h = h0
    for t in range(projected.shape[0]):
        h = xp.tanh(projected[t] + h @ recurrent_kernel)
        hs[t] = h
    return hs


def rnn_backward(grad_hs, hs, h0, recurrent_kernel):
    """Backprop through time of rnn_forward: with dh_t = grad_hs[t] + (from step t+1),
    d pre_t = dh_t (1 - h_t^2) and dh_{t-1} = d pre_t @ U^T.
    Returns grad_projected (T, B, units), grad_h0 (B, units), grad_recurrent_kernel."""
    xp = get_array_module(grad_hs)
    grad_projected = xp.empty_like(grad_hs)
    dh_next = xp.zeros_like(h0)
    for t in range(hs.shape[0] - 1, -1, -1):
        d_pre = (grad_hs[t] + dh_next) * (1 - hs[t] * hs[t])
        grad_projected[t] = d_pre
        dh_next = d_pre @ recurrent_kernel.T
    return grad_projected, dh_next, flat_product(previous_states(hs, h0), grad_projected)


# ------------------------------------------------------------------------------ LSTM
def lstm_forward(x, h0, c0, kernel, recurrent_kernel, bias, recurrent_activation="sigmoid",
                 return_sequences=True, save=True):
    """Hochreiter & Schmidhuber (1997) with a forget gate, Keras' gate order i, f, c, o,
    over the batch-major input x (batch, time, features):

        [a_i, a_f, a_g, a_o] = x_t @ W + h_{t-1} @ U + b
        i = s(a_i), f = s(a_f), g = tanh(a_g), o = s(a_o)     (s: recurrent_activation)
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)

    The input product x_t @ W + b of every step is one matrix product before the loop.
    Returns, time-major: hs (time, batch, units), or only the last step (1, batch, units)
    when neither `return_sequences` nor `save` asks for the others; and when `save` (for
    backward) cs (time, batch, units) and gates (time, batch, 4*units): i, f, g, o after
    their activations, else None for both.
    """
    xp = get_array_module(x)
    gate = gate_activation(recurrent_activation)
    batch, steps, features = x.shape
    units = h0.shape[1]
    x_tm = x.transpose(1, 0, 2).reshape(steps * batch, features)
    projected = (x_tm @ kernel + bias).reshape(steps, batch, 4 * units)
    keep_all = return_sequences or save
    hs = xp.empty((steps if keep_all else 1, batch, units), dtype=x.dtype)
    cs = xp.empty_like(hs) if save else None
    gates = xp.empty_like(projected) if save else None
    h, c = h0, c0
    for t in range(steps):
        a = projected[t] + h @ recurrent_kernel
        i = gate(a[:, :units])
        f = gate(a[:, units:2 * units])
        g = xp.tanh(a[:, 2 * units:3 * units])
        o = gate(a[:, 3 * units:])
        c = f * c + i * g
        h = o * xp.tanh(c)
        hs[t if keep_all else 0] = h
        if save:
            cs[t] = c
            gates[t] = xp.concatenate([i, f, g, o], axis=1)
    return hs, cs, gates


def lstm_backward(grad_hs, x, hs, cs, gates, h0, c0, kernel, recurrent_kernel, recurrent_activation="sigmoid"):
    """Backprop through time of lstm_forward; `grad_hs` is time-major, (time, batch,
    units), or (1, batch, units) for the last step alone (return_sequences=False). Per
    step, from dh = grad_hs[t] + dh_next:

        do = dh tanh(c_t);  dc = dh o (1 - tanh(c_t)^2) + dc_next
        di = dc g;  df = dc c_{t-1};  dg = dc i;  dc_next = dc f
        d a = [di s'(i), df s'(f), dg (1-g^2), do s'(o)];  dh_next = d a @ U^T

    with s' the gate's derivative (`gate_derivative`). Then, summed over time and batch,
    grad_W = x^T d a, grad_U = h_{t-1}^T d a, grad_b = sum d a and grad_x = d a @ W^T,
    each one matrix product on the flattened (time * batch) rows.
    Returns grad_x (batch, time, features), grad_h0, grad_c0, grad_kernel,
    grad_recurrent_kernel, grad_bias.
    """
    xp = get_array_module(grad_hs)
    steps, batch, units = hs.shape
    grad_a = xp.empty_like(gates)
    dh_next = grad_hs[0] if grad_hs.shape[0] < steps else xp.zeros_like(h0)
    dc_next = xp.zeros_like(c0)
    for t in range(steps - 1, -1, -1):
        i, f = gates[t, :, :units], gates[t, :, units:2 * units]
        g, o = gates[t, :, 2 * units:3 * units], gates[t, :, 3 * units:]
        c_prev = cs[t - 1] if t > 0 else c0
        tanh_c = xp.tanh(cs[t])
        dh = grad_hs[t] + dh_next if grad_hs.shape[0] == steps else dh_next
        dc = dh * o * (1 - tanh_c * tanh_c) + dc_next
        d_a = xp.concatenate([
            dc * g * gate_derivative(i, recurrent_activation),
            dc * c_prev * gate_derivative(f, recurrent_activation),
            dc * i * (1 - g * g),
            dh * tanh_c * gate_derivative(o, recurrent_activation),
        ], axis=1)
        grad_a[t] = d_a
        dc_next = dc * f
        dh_next = d_a @ recurrent_kernel.T
    flat = grad_a.reshape(steps * batch, 4 * units)
    x_tm = x.transpose(1, 0, 2).reshape(steps * batch, -1)
    grad_x = (flat @ kernel.T).reshape(steps, batch, -1).transpose(1, 0, 2)
    grad_recurrent = flat_product(previous_states(hs, h0), grad_a)
    return grad_x, dh_next, dc_next, x_tm.T @ flat, grad_recurrent, flat.sum(axis=0)


# ------------------------------------------------------------------------------- GRU
def gru_forward(projected, h0, recurrent_kernel, recurrent_bias, reset_after, recurrent_activation="sigmoid"):
    """Cho et al. (2014) in Keras' form, gate order z, r, h, with b_r = recurrent_bias
    and s = the recurrent activation (sigmoid or hard_sigmoid):

        [x_z, x_r, x_h] = projected_t              (x_t @ W + input bias)
        z = s(x_z + h_{t-1} @ U_z + b_rz)
        r = s(x_r + h_{t-1} @ U_r + b_rr)
        reset_after=True  (Keras' default, CuDNN's):  m = h_{t-1} @ U_h + b_rh,
                                                        hh = tanh(x_h + r * m)
        reset_after=False (the 2014 paper):            m = (r * h_{t-1}) @ U_h + b_rh,
                                                        hh = tanh(x_h + m)
        h_t = z * h_{t-1} + (1 - z) * hh

    With reset_after=False Keras has one bias, folded into `projected`; the op passes a
    zero recurrent_bias. Returns hs (time, batch, units) and gates (time, batch,
    4*units): z, r, hh and m (the backward of reset_after=True needs m for dr).
    """
    xp = get_array_module(projected)
    gate = gate_activation(recurrent_activation)
    units = h0.shape[1]
    steps = projected.shape[0]
    u_zr, u_h = recurrent_kernel[:, :2 * units], recurrent_kernel[:, 2 * units:]
    hs = xp.empty((steps,) + h0.shape, dtype=projected.dtype)
    gates = xp.empty((steps, h0.shape[0], 4 * units), dtype=projected.dtype)
    h = h0
    for t in range(steps):
        zr = gate(projected[t, :, :2 * units] + h @ u_zr + recurrent_bias[:2 * units])
        z, r = zr[:, :units], zr[:, units:]
        if reset_after:
            m = h @ u_h + recurrent_bias[2 * units:]
            hh = xp.tanh(projected[t, :, 2 * units:] + r * m)
        else:
            m = (r * h) @ u_h + recurrent_bias[2 * units:]
            hh = xp.tanh(projected[t, :, 2 * units:] + m)
        h = z * h + (1 - z) * hh
        hs[t] = h
        gates[t] = xp.concatenate([z, r, hh, m], axis=1)
    return hs, gates


def gru_backward(grad_hs, hs, gates, h0, recurrent_kernel, reset_after, recurrent_activation="sigmoid"):
    """Backprop through time of gru_forward. Per step, from dh = grad_hs[t] + dh_next:

        dz = dh (h_{t-1} - hh);  d x_h = dh (1 - z)(1 - hh^2);  dh_{t-1} = dh z
        reset_after=True:   dr = d x_h m;        d m = d x_h r
        reset_after=False:  d m = d x_h;  d(r h_{t-1}) = d m @ U_h^T
                            dr = d(r h_{t-1}) h_{t-1};  dh_{t-1} += d(r h_{t-1}) r
        d a_z = dz s'(z);  d a_r = dr s'(r);  dh_{t-1} += [d a_z, d a_r] @ U_zr^T
                            (+ d m @ U_h^T when reset_after)

    with s' the gate derivative (z(1-z) for sigmoid, see `gate_derivative`). Returns
    grad_projected (T, B, 3*units), grad_h0, grad_recurrent_kernel and
    grad_recurrent_bias (3*units,).
    """
    xp = get_array_module(grad_hs)
    units = h0.shape[1]
    u_zr, u_h = recurrent_kernel[:, :2 * units], recurrent_kernel[:, 2 * units:]
    h_prev_all = previous_states(hs, h0)
    steps = hs.shape[0]
    grad_projected = xp.empty((steps, h0.shape[0], 3 * units), dtype=grad_hs.dtype)
    grad_m = xp.empty_like(hs)  # d loss / d m, the recurrent term of the candidate
    dh_next = xp.zeros_like(h0)
    for t in range(steps - 1, -1, -1):
        z, r = gates[t, :, :units], gates[t, :, units:2 * units]
        hh, m = gates[t, :, 2 * units:3 * units], gates[t, :, 3 * units:]
        h_prev = h_prev_all[t]
        dh = grad_hs[t] + dh_next
        d_xh = dh * (1 - z) * (1 - hh * hh)
        dh_prev = dh * z
        if reset_after:
            dr = d_xh * m
            d_m = d_xh * r
            dh_prev = dh_prev + d_m @ u_h.T
        else:
            d_m = d_xh
            d_reset_h = d_m @ u_h.T
            dr = d_reset_h * h_prev
            dh_prev = dh_prev + d_reset_h * r
        d_zr = xp.concatenate([dh * (h_prev - hh) * gate_derivative(z, recurrent_activation),
                               dr * gate_derivative(r, recurrent_activation)], axis=1)
        grad_projected[t] = xp.concatenate([d_zr, d_xh], axis=1)
        grad_m[t] = d_m
        dh_next = dh_prev + d_zr @ u_zr.T
    return (grad_projected, dh_next) + gru_weight_gradients(grad_projected, grad_m, gates, h_prev_all, reset_after)


def gru_weight_gradients(grad_projected, grad_m, gates, h_prev_all, reset_after):
    """grad_recurrent_kernel (units, 3*units) and grad_recurrent_bias (3*units,) from the
    gradients of the pre-activations, after the time loop: U_z, U_r multiply h_{t-1};
    U_h multiplies h_{t-1} (reset_after) or r * h_{t-1} (not), paired with d m."""
    xp = get_array_module(grad_projected)
    units = h_prev_all.shape[-1]
    candidate_input = h_prev_all if reset_after else gates[:, :, units:2 * units] * h_prev_all
    grad_recurrent_kernel = xp.concatenate([
        flat_product(h_prev_all, grad_projected[:, :, :2 * units]),
        flat_product(candidate_input, grad_m),
    ], axis=1)
    grad_recurrent_bias = xp.concatenate([
        grad_projected[:, :, :2 * units].sum(axis=(0, 1)), grad_m.sum(axis=(0, 1))
    ])
    return grad_recurrent_kernel, grad_recurrent_bias
