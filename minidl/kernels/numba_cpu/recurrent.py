"""Numba twins of kernels/reference/recurrent.py: the same names, signatures, time-major
layout and equations (see there), with each step's gate math fused into one pass over
its (batch, units) elements instead of a chain of NumPy temporaries.

The LSTM, the model most users time first, is built for speed:
- the batch is split into parts, one per thread (threads.py decides how many from the
  work), and each part runs through every step on its own: the rows of a batch never
  interact, so the threads meet once per call, not once per step;
- per step and part there is one product, [x_t, h_{t-1}] @ [W; U] (BLAS, into a
  buffer that stays in cache), so no (time, batch, 4*units) input projection is built;
- the gates' sigmoid and tanh come from vector_math.py, and every loop is written so
  LLVM vectorises it (see `_activate_gates`): libm's scalar exp and tanh cost several
  times the rest of a step;
- without a graph the loop keeps no states for backward, and for the last h alone
  (return_sequences=False) writes no other step.
Backward runs the same parts through time in reverse; the weight and input gradients
are then single products on (time * batch) rows, split across threads (math.py).

SimpleRNN and GRU keep the simpler design: the op's input projection, one loop over
the whole batch, `np.dot` per step into preallocated buffers.
"""
import numpy as np
from numba import njit, prange

from minidl.kernels.numba_cpu import threads, vector_math
from minidl.kernels.numba_cpu.math import MIN_ROWS, matmul
from minidl.kernels.numba_cpu.threads import bounds
from minidl.kernels.reference.recurrent import flat_product, gate_activation, gru_weight_gradients, previous_states


@njit(cache=True)
def _sigmoid(x):
    # exp(-x) overflows to inf for very negative x and 1 / inf = 0 is the right limit;
    # Numba raises no floating-point warnings, so no branch is needed.
    return 1.0 / (1.0 + np.exp(-x))


@njit(cache=True)
def _tanh(x):
    """tanh(x) = 2 sigmoid(2x) - 1: one exp instead of libm's tanh, several times
    slower here. Absolute error within 2 ulp of 1; the relative error grows for |x| << 1,
    harmless where the result is added to or multiplies O(1) values, as in every gate."""
    return 2.0 / (1.0 + np.exp(-2.0 * x)) - 1.0


@njit(cache=True)
def _hard_sigmoid(x):
    # Keras 2's hard_sigmoid, clip(0.2 x + 0.5, 0, 1).
    return min(max(0.2 * x + 0.5, 0.0), 1.0)


@njit(cache=True)
def _gate(x, hard):
    """The recurrent activation: hard_sigmoid when `hard`, else sigmoid."""
    return _hard_sigmoid(x) if hard else _sigmoid(x)


@njit(cache=True)
def _gate_derivative(s, hard):
    """d gate / d pre-activation from the gate value s (as reference.gate_derivative)."""
    if hard:
        return 0.2 if 0.0 < s < 1.0 else 0.0
    return s * (1.0 - s)


def _is_hard(recurrent_activation):
    """The loops' flag for `recurrent_activation`; an unknown name is a ValueError."""
    gate_activation(recurrent_activation)
    return recurrent_activation == "hard_sigmoid"


def _contiguous(*arrays):
    return [np.ascontiguousarray(a) for a in arrays]


# ------------------------------------------------------------------------- SimpleRNN
@njit(cache=True)
def _rnn_forward_loop(projected, h0, recurrent_kernel):
    steps, batch, units = projected.shape[0], h0.shape[0], h0.shape[1]
    hs = np.empty((steps, batch, units), dtype=projected.dtype)
    recurrent = np.empty((batch, units), dtype=projected.dtype)
    h = h0
    for t in range(steps):
        np.dot(h, recurrent_kernel, recurrent)
        for b in range(batch):
            for j in range(units):
                hs[t, b, j] = _tanh(projected[t, b, j] + recurrent[b, j])
        h = hs[t]
    return hs


@njit(cache=True)
def _rnn_backward_loop(grad_hs, hs, kernel_t):
    steps, batch, units = hs.shape
    grad_projected = np.empty_like(hs)
    dh_next = np.zeros((batch, units), dtype=hs.dtype)
    for t in range(steps - 1, -1, -1):
        for b in range(batch):
            for j in range(units):
                h = hs[t, b, j]
                grad_projected[t, b, j] = (grad_hs[t, b, j] + dh_next[b, j]) * (1.0 - h * h)
        np.dot(grad_projected[t], kernel_t, dh_next)
    return grad_projected, dh_next


def rnn_forward(projected, h0, recurrent_kernel):
    return _rnn_forward_loop(*_contiguous(projected, h0, recurrent_kernel))


def rnn_backward(grad_hs, hs, h0, recurrent_kernel):
    grad_projected, grad_h0 = _rnn_backward_loop(*_contiguous(grad_hs, hs, recurrent_kernel.T))
    return grad_projected, grad_h0, flat_product(previous_states(hs, h0), grad_projected)


# ------------------------------------------------------------------------------ LSTM
@njit(cache=True, error_model="numpy", inline="always")
def _copy(destination, source):
    # A plain loop: Numba's slice assignment costs more than the copy of a short row.
    for k in range(source.size):
        destination[k] = source[k]


@njit(cache=True, error_model="numpy", inline="always")
def _activate_gates(a, units, hard):
    """One row of pre-activations [a_i, a_f, a_g, a_o] -> [i, f, g, o] in place.

    Written for LLVM's vectoriser, as every loop here: each loop indexes a view from 0
    (an index Numba cannot prove non-negative, such as 2 * units + j, keeps its
    negative-index check and the loop scalar, 10-20x slower), and the choice of
    activation is made outside the loops (a branch inside them does the same)."""
    i_f, g, o = a[:2 * units], a[2 * units:3 * units], a[3 * units:]
    if hard:
        for j in range(i_f.size):
            i_f[j] = vector_math.hard_sigmoid(i_f[j])
        for j in range(o.size):
            o[j] = vector_math.hard_sigmoid(o[j])
    else:
        for j in range(i_f.size):
            i_f[j] = vector_math.sigmoid(i_f[j])
        for j in range(o.size):
            o[j] = vector_math.sigmoid(o[j])
    for j in range(g.size):
        g[j] = vector_math.tanh(g[j])


@njit(cache=True, error_model="numpy", inline="always")
def _gate_slope(s, hard):
    """_gate_derivative for the vectorised LSTM loop: s (1 - s) for the sigmoid and 0.2
    where the hard sigmoid is not clipped are both computed and one kept by the weight
    hard = 0 or 1 (exact), since a branch would keep the loop from vectorising."""
    zero, one, _, fifth, _ = vector_math.plain_constants(s)
    clipped_slope = fifth if zero < s < one else zero
    return (one - hard) * (s * (one - s)) + hard * clipped_slope


@njit(parallel=True, cache=True, error_model="numpy")
def _lstm_forward_loop(x, h0, c0, weights, bias, hard, save, parts, hs, cs, gates):
    # One part of the batch per thread, through every step: rows never interact, so the
    # threads meet only at the end. Per step and part, one product [x_t, h_{t-1}] @ [W; U].
    batch, steps, features = x.shape
    units = h0.shape[1]
    keep_all = hs.shape[0] == steps
    for part in prange(parts):
        start, stop = bounds(part, parts, batch)
        rows = stop - start
        xh = np.empty((rows, features + units), dtype=x.dtype)
        a = np.empty((rows, 4 * units), dtype=x.dtype)
        c = np.empty((rows, units), dtype=x.dtype)
        for r in range(rows):
            _copy(xh[r, features:], h0[start + r])
            _copy(c[r], c0[start + r])
        for t in range(steps):
            for r in range(rows):
                _copy(xh[r, :features], x[start + r, t])
            np.dot(xh, weights, a)
            for r in range(rows):
                row, c_row, h_next = a[r], c[r], xh[r, features:]
                for j in range(row.size):
                    row[j] += bias[j]
                _activate_gates(row, units, hard)
                i, f, g, o = row[:units], row[units:2 * units], row[2 * units:3 * units], row[3 * units:]
                for j in range(units):
                    c_new = f[j] * c_row[j] + i[j] * g[j]
                    c_row[j] = c_new
                    h_next[j] = o[j] * vector_math.tanh(c_new)
                if keep_all or t == steps - 1:
                    _copy(hs[t if keep_all else 0, start + r], h_next)
                if save:
                    _copy(cs[t, start + r], c_row)
                    _copy(gates[t, start + r], row)


@njit(parallel=True, cache=True, error_model="numpy")
def _lstm_backward_loop(grad_hs, cs, gates, c0, recurrent_t, hard, parts, grad_a, grad_h0, grad_c0):
    steps, batch, units = cs.shape
    full = grad_hs.shape[0] == steps  # else the gradient of the last step alone
    for part in prange(parts):
        start, stop = bounds(part, parts, batch)
        rows = stop - start
        d_a = np.empty((rows, 4 * units), dtype=cs.dtype)
        dh_next = np.zeros((rows, units), dtype=cs.dtype)
        dc_next = np.zeros((rows, units), dtype=cs.dtype)
        if not full:
            for r in range(rows):
                _copy(dh_next[r], grad_hs[0, start + r])
        for t in range(steps - 1, -1, -1):
            for r in range(rows):
                n = start + r
                if full:
                    grad_row = grad_hs[t, n]
                    dh_row = dh_next[r]
                    for j in range(units):
                        dh_row[j] += grad_row[j]
                gate_row, c_row = gates[t, n], cs[t, n]
                c_prev = cs[t - 1, n] if t > 0 else c0[n]
                i, f = gate_row[:units], gate_row[units:2 * units]
                g, o = gate_row[2 * units:3 * units], gate_row[3 * units:]
                row, dh_row, dc_row = d_a[r], dh_next[r], dc_next[r]
                d_i, d_f, d_g, d_o = row[:units], row[units:2 * units], row[2 * units:3 * units], row[3 * units:]
                for j in range(units):
                    tanh_c = vector_math.tanh(c_row[j])
                    one = vector_math.plain_constants(tanh_c)[1]  # keeps float32 in float32
                    dh = dh_row[j]
                    dc = dh * o[j] * (one - tanh_c * tanh_c) + dc_row[j]
                    d_i[j] = dc * g[j] * _gate_slope(i[j], hard)
                    d_f[j] = dc * c_prev[j] * _gate_slope(f[j], hard)
                    d_g[j] = dc * i[j] * (one - g[j] * g[j])
                    d_o[j] = dh * tanh_c * _gate_slope(o[j], hard)
                    dc_row[j] = dc * f[j]
                _copy(grad_a[t, n], row)
            np.dot(d_a, recurrent_t, dh_next)
        for r in range(rows):
            _copy(grad_h0[start + r], dh_next[r])
            _copy(grad_c0[start + r], dc_next[r])


def _lstm_parts(batch, steps, features, units):
    # The work of a step: the (features + units) x 4 units product and the gate math.
    return threads.parts(batch * steps * 4 * units * (features + units), threads.PRODUCT_GRAIN,
                         most=batch // MIN_ROWS)


def lstm_forward(x, h0, c0, kernel, recurrent_kernel, bias, recurrent_activation="sigmoid",
                 return_sequences=True, save=True):
    """The reference's lstm_forward, the input product fused into the time loop (no
    (time, batch, 4*units) projection is built) and the batch split across threads."""
    x, h0, c0, bias = _contiguous(x, h0, c0, bias)
    batch, steps, features = x.shape
    units = h0.shape[1]
    weights = np.concatenate([kernel, recurrent_kernel], axis=0)
    hs = np.empty((steps if return_sequences or save else 1, batch, units), dtype=x.dtype)
    # Without `save` the loop writes no states: one-element placeholders keep the types.
    cs = np.empty((steps, batch, units) if save else (1, 1, 1), dtype=x.dtype)
    gates = np.empty((steps, batch, 4 * units) if save else (1, 1, 1), dtype=x.dtype)
    _lstm_forward_loop(x, h0, c0, weights, bias, _is_hard(recurrent_activation), bool(save),
                       _lstm_parts(batch, steps, features, units), hs, cs, gates)
    return (hs, cs, gates) if save else (hs, None, None)


def lstm_backward(grad_hs, x, hs, cs, gates, h0, c0, kernel, recurrent_kernel, recurrent_activation="sigmoid"):
    """The reference's lstm_backward: the time loop split across threads by batch, then
    the weight and input gradients as single products on (time * batch) rows."""
    grad_hs, hs, cs, gates, c0 = _contiguous(grad_hs, hs, cs, gates, c0)
    steps, batch, units = hs.shape
    grad_a = np.empty(gates.shape, dtype=gates.dtype)
    grad_h0 = np.empty((batch, units), dtype=hs.dtype)
    grad_c0 = np.empty_like(grad_h0)
    hard = hs.dtype.type(_is_hard(recurrent_activation))  # a 0/1 weight in the loop's dtype
    _lstm_backward_loop(grad_hs, cs, gates, c0, np.ascontiguousarray(recurrent_kernel.T),
                        hard, _lstm_parts(batch, steps, x.shape[2], units), grad_a, grad_h0, grad_c0)
    flat = grad_a.reshape(steps * batch, 4 * units)
    x_tm = np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(steps * batch, -1)
    h_prev = previous_states(hs, h0).reshape(steps * batch, units)
    grad_x = matmul(flat, kernel.T).reshape(steps, batch, -1).transpose(1, 0, 2)
    return grad_x, grad_h0, grad_c0, matmul(x_tm.T, flat), matmul(h_prev.T, flat), flat.sum(axis=0)


# ------------------------------------------------------------------------------- GRU
@njit(cache=True)
def _gru_forward_loop(projected, h0, u_zr, u_h, recurrent_bias, reset_after, hard):
    steps, batch, units = projected.shape[0], h0.shape[0], h0.shape[1]
    hs = np.empty((steps, batch, units), dtype=projected.dtype)
    gates = np.empty((steps, batch, 4 * units), dtype=projected.dtype)
    a_zr = np.empty((batch, 2 * units), dtype=projected.dtype)
    m = np.empty((batch, units), dtype=projected.dtype)
    reset_h = np.empty((batch, units), dtype=projected.dtype)
    h = h0
    for t in range(steps):
        np.dot(h, u_zr, a_zr)
        for b in range(batch):
            for j in range(2 * units):
                gates[t, b, j] = _gate(projected[t, b, j] + a_zr[b, j] + recurrent_bias[j], hard)
        if reset_after:
            np.dot(h, u_h, m)
        else:
            for b in range(batch):
                for j in range(units):
                    reset_h[b, j] = gates[t, b, units + j] * h[b, j]
            np.dot(reset_h, u_h, m)
        for b in range(batch):
            for j in range(units):
                z = gates[t, b, j]
                m_bj = m[b, j] + recurrent_bias[2 * units + j]
                gated = gates[t, b, units + j] * m_bj if reset_after else m_bj
                hh = _tanh(projected[t, b, 2 * units + j] + gated)
                gates[t, b, 2 * units + j] = hh
                gates[t, b, 3 * units + j] = m_bj
                hs[t, b, j] = z * h[b, j] + (1.0 - z) * hh
        h = hs[t]
    return hs, gates


@njit(cache=True)
def _gru_backward_loop(grad_hs, gates, h_prev_all, u_zr_t, u_h_t, reset_after, hard):
    steps, batch, units = h_prev_all.shape
    grad_projected = np.empty((steps, batch, 3 * units), dtype=h_prev_all.dtype)
    grad_m = np.empty_like(h_prev_all)
    d_zr = np.empty((batch, 2 * units), dtype=h_prev_all.dtype)
    via_zr = np.empty((batch, units), dtype=h_prev_all.dtype)
    via_m = np.empty((batch, units), dtype=h_prev_all.dtype)
    dh_next = np.zeros((batch, units), dtype=h_prev_all.dtype)
    for t in range(steps - 1, -1, -1):
        # d x_h and d m first: with reset_after=False, dr needs d m @ U_h^T.
        for b in range(batch):
            for j in range(units):
                z = gates[t, b, j]
                hh = gates[t, b, 2 * units + j]
                d_xh = (grad_hs[t, b, j] + dh_next[b, j]) * (1.0 - z) * (1.0 - hh * hh)
                grad_projected[t, b, 2 * units + j] = d_xh
                grad_m[t, b, j] = d_xh * gates[t, b, units + j] if reset_after else d_xh
        np.dot(grad_m[t], u_h_t, via_m)
        for b in range(batch):
            for j in range(units):
                z = gates[t, b, j]
                r = gates[t, b, units + j]
                hh = gates[t, b, 2 * units + j]
                h_prev = h_prev_all[t, b, j]
                dh = grad_hs[t, b, j] + dh_next[b, j]
                if reset_after:
                    dr = grad_projected[t, b, 2 * units + j] * gates[t, b, 3 * units + j]
                    dh_next[b, j] = dh * z + via_m[b, j]
                else:
                    dr = via_m[b, j] * h_prev
                    dh_next[b, j] = dh * z + via_m[b, j] * r
                d_zr[b, j] = dh * (h_prev - hh) * _gate_derivative(z, hard)
                d_zr[b, units + j] = dr * _gate_derivative(r, hard)
                grad_projected[t, b, j] = d_zr[b, j]
                grad_projected[t, b, units + j] = d_zr[b, units + j]
        np.dot(d_zr, u_zr_t, via_zr)
        dh_next += via_zr
    return grad_projected, grad_m, dh_next


def gru_forward(projected, h0, recurrent_kernel, recurrent_bias, reset_after, recurrent_activation="sigmoid"):
    units = h0.shape[1]
    u_zr, u_h = recurrent_kernel[:, :2 * units], recurrent_kernel[:, 2 * units:]
    return _gru_forward_loop(*_contiguous(projected, h0, u_zr, u_h, recurrent_bias), bool(reset_after),
                             _is_hard(recurrent_activation))


def gru_backward(grad_hs, hs, gates, h0, recurrent_kernel, reset_after, recurrent_activation="sigmoid"):
    units = h0.shape[1]
    h_prev_all = previous_states(hs, h0)
    u_zr_t, u_h_t = recurrent_kernel[:, :2 * units].T, recurrent_kernel[:, 2 * units:].T
    grad_projected, grad_m, grad_h0 = _gru_backward_loop(
        *_contiguous(grad_hs, gates, h_prev_all, u_zr_t, u_h_t), bool(reset_after), _is_hard(recurrent_activation))
    return (grad_projected, grad_h0) + gru_weight_gradients(grad_projected, grad_m, gates, h_prev_all, reset_after)
