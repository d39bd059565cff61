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
# Every loop over elements below is written for LLVM's vectoriser, which gives up on a
# loop that Numba leaves an index check in (an index it cannot prove non-negative, such
# as 2 * units + j), that branches on a flag, or that reads and writes more arrays than
# it can check for overlap at run time. So the gate math of a step runs over whole
# blocks: the part's rows of one gate laid out gate-major, (4, rows, units), each gate a
# flat run of rows * units numbers, one short loop per result. Measured on the backward
# step: 20 ns per element as one loop per row, 5 ns as short loops per row, about 1 ns
# over the block.
@njit(cache=True, error_model="numpy", inline="always")
def _copy(destination, source):
    # A plain loop: Numba's slice assignment costs more than the copy of a short row.
    for k in range(source.size):
        destination[k] = source[k]


@njit(cache=True, error_model="numpy", inline="always")
def _gate_major(rows_major, gate_major):
    """(rows, 4, units) -> (4, rows, units), the layout of the flat gate loops."""
    for r in range(rows_major.shape[0]):
        for q in range(4):
            _copy(gate_major[q, r], rows_major[r, q])


@njit(cache=True, error_model="numpy", inline="always")
def _gate_major_plus_bias(rows_major, bias, gate_major):
    """_gate_major, adding bias (4, units) to every row on the way."""
    for r in range(rows_major.shape[0]):
        for q in range(4):
            source, target, bias_row = rows_major[r, q], gate_major[q, r], bias[q]
            for j in range(source.size):
                target[j] = source[j] + bias_row[j]


@njit(cache=True, error_model="numpy", inline="always")
def _rows_major(gate_major, rows_major):
    """(4, rows, units) -> (rows, 4, units), the layout of the products and saved gates."""
    for r in range(rows_major.shape[0]):
        for q in range(4):
            _copy(rows_major[r, q], gate_major[q, r])


@njit(cache=True, error_model="numpy", inline="always")
def _activate(gates, hard):
    """gates (4, n): pre-activations of i, f, g, o -> their values, in place."""
    for q in (0, 1, 3):
        row = gates[q]
        if hard:
            for k in range(row.size):
                row[k] = vector_math.hard_sigmoid(row[k])
        else:
            for k in range(row.size):
                row[k] = vector_math.sigmoid(row[k])
    g = gates[2]
    for k in range(g.size):
        g[k] = vector_math.tanh(g[k])


@njit(cache=True, error_model="numpy", inline="always")
def _gate_slope(s, hard):
    """The gate's derivative from its value: s (1 - s) for the sigmoid and 0.2 where the
    hard sigmoid is not clipped are both computed and one kept by the weight hard = 0 or
    1 (exact), since a branch would keep the loop from vectorising."""
    zero, one, _, fifth, _ = vector_math.plain_constants(s)
    clipped_slope = fifth if zero < s < one else zero
    return (one - hard) * (s * (one - s)) + hard * clipped_slope


@njit(cache=True, error_model="numpy", inline="always")
def _load_inputs(x, first, t, h_prev, xh):
    """xh = [x[first:first + rows, t], h_prev]: the step's product operand."""
    features = x.shape[2]
    for r in range(xh.shape[0]):
        _copy(xh[r, :features], x[first + r, t])
        _copy(xh[r, features:], h_prev[r])


@njit(parallel=True, cache=True, error_model="numpy")
def _lstm_forward_loop(x, h0, c0, weights, bias, hard, save, parts, hs, cs, gates):
    # One part of the batch per thread, through every step: rows never interact, so the
    # threads meet only at the end. Per step and part, one product [x_t, h_{t-1}] @ [W; U].
    batch, steps, features = x.shape
    units = h0.shape[1]
    keep_all = hs.shape[0] == steps
    bias3 = bias.reshape(4, units)
    for part in prange(parts):
        start, stop = bounds(part, parts, batch)
        rows = stop - start
        xh = np.empty((rows, features + units), dtype=x.dtype)
        a = np.empty((rows, 4, units), dtype=x.dtype)
        a4 = np.empty((4, rows, units), dtype=x.dtype)
        h = np.empty((rows, units), dtype=x.dtype)
        c = np.empty(rows * units, dtype=x.dtype)
        _copy(h.reshape(-1), h0[start:stop].reshape(-1))
        _copy(c, c0[start:stop].reshape(-1))
        for t in range(steps):
            _load_inputs(x, start, t, h, xh)
            np.dot(xh, weights, a.reshape(rows, 4 * units))
            _gate_major_plus_bias(a, bias3, a4)
            flat = a4.reshape(4, rows * units)
            _activate(flat, hard)
            i, f, g, o = flat[0], flat[1], flat[2], flat[3]
            h_flat = h.reshape(-1)
            for k in range(c.size):
                c[k] = f[k] * c[k] + i[k] * g[k]
            for k in range(c.size):
                h_flat[k] = o[k] * vector_math.tanh(c[k])
            if keep_all or t == steps - 1:
                _copy(hs[t if keep_all else 0, start:stop].reshape(-1), h_flat)
            if save:
                _copy(cs[t, start:stop].reshape(-1), c)
                _rows_major(a4, gates[t, start:stop].reshape(rows, 4, units))


@njit(parallel=True, cache=True, error_model="numpy")
def _lstm_backward_loop(grad_hs, x, hs, cs, gates, h0, c0, weights, hard, parts, grad_x, grad_weights,
                        grad_bias, grad_h0, grad_c0):
    # Per step and part: d a from the saved gates (flat block loops), then one product
    # d [x_t, h_{t-1}] = d a @ [W; U]^T, which gives grad_x_t and the carry dh, and
    # d [W; U] += [x_t, h_{t-1}]^T @ d a into the part's own slab: nothing of size
    # (time, batch, 4 units) is built, and the threads meet only at the end.
    steps, batch, units = cs.shape
    features = x.shape[2]
    full = grad_hs.shape[0] == steps  # else the gradient of the last step alone
    weights_t = np.ascontiguousarray(weights.T)
    for part in prange(parts):
        start, stop = bounds(part, parts, batch)
        rows = stop - start
        n = rows * units
        xh = np.empty((rows, features + units), dtype=x.dtype)
        d_xh = np.empty((rows, features + units), dtype=x.dtype)
        gate4 = np.empty((4, rows, units), dtype=x.dtype)
        d_a4 = np.empty((4, rows, units), dtype=x.dtype)
        d_a = np.empty((rows, 4, units), dtype=x.dtype)
        product = np.empty(weights.shape, dtype=x.dtype)
        tanh_c = np.empty(n, dtype=x.dtype)
        dh = np.zeros(n, dtype=x.dtype)
        dc = np.zeros(n, dtype=x.dtype)
        slab, bias_slab = grad_weights[part], grad_bias[part].reshape(4, n // rows)
        slab[:] = 0
        bias_slab[:] = 0
        one = vector_math.plain_constants(hard)[1]
        if not full:
            _copy(dh, grad_hs[0, start:stop].reshape(-1))
        for t in range(steps - 1, -1, -1):
            if full:
                step_grad = grad_hs[t, start:stop].reshape(-1)
                for k in range(n):
                    dh[k] += step_grad[k]
            _gate_major(gates[t, start:stop].reshape(rows, 4, units), gate4)
            gate = gate4.reshape(4, n)
            i, f, g, o = gate[0], gate[1], gate[2], gate[3]
            c = cs[t, start:stop].reshape(-1)
            c_prev = cs[t - 1, start:stop].reshape(-1) if t > 0 else c0[start:stop].reshape(-1)
            d_gate = d_a4.reshape(4, n)
            d_i, d_f, d_g, d_o = d_gate[0], d_gate[1], d_gate[2], d_gate[3]
            for k in range(n):
                tanh_c[k] = vector_math.tanh(c[k])
            for k in range(n):
                d_o[k] = dh[k] * tanh_c[k] * _gate_slope(o[k], hard)
            for k in range(n):
                dc[k] += dh[k] * o[k] * (one - tanh_c[k] * tanh_c[k])
            for k in range(n):
                d_i[k] = dc[k] * g[k] * _gate_slope(i[k], hard)
            for k in range(n):
                d_f[k] = dc[k] * c_prev[k] * _gate_slope(f[k], hard)
            for k in range(n):
                d_g[k] = dc[k] * i[k] * (one - g[k] * g[k])
            for k in range(n):
                dc[k] *= f[k]
            for q in range(4):
                block, bias_row = d_a4[q], bias_slab[q]
                for r in range(rows):
                    row = block[r]
                    for j in range(units):
                        bias_row[j] += row[j]
            _rows_major(d_a4, d_a)
            d_a2 = d_a.reshape(rows, 4 * units)
            _load_inputs(x, start, t, hs[t - 1, start:stop] if t > 0 else h0[start:stop], xh)
            np.dot(xh.T, d_a2, product)
            for row in range(product.shape[0]):
                slab_row, product_row = slab[row], product[row]
                for column in range(product_row.size):
                    slab_row[column] += product_row[column]
            np.dot(d_a2, weights_t, d_xh)
            for r in range(rows):
                _copy(grad_x[start + r, t], d_xh[r, :features])
                _copy(dh[r * units:(r + 1) * units], d_xh[r, features:])
        _copy(grad_h0[start:stop].reshape(-1), dh)
        _copy(grad_c0[start:stop].reshape(-1), dc)


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
    """The reference's lstm_backward in one pass back through time, the batch split
    across threads, each part summing its own weight gradients (added in part order)."""
    grad_hs, x, hs, cs, gates, h0, c0 = _contiguous(grad_hs, x, hs, cs, gates, h0, c0)
    steps, batch, units = hs.shape
    features = x.shape[2]
    parts = _lstm_parts(batch, steps, features, units)
    weights = np.concatenate([kernel, recurrent_kernel], axis=0)
    grad_x = np.empty(x.shape, dtype=x.dtype)
    grad_weights = np.empty((parts,) + weights.shape, dtype=x.dtype)
    grad_bias = np.empty((parts, 4 * units), dtype=x.dtype)
    grad_h0 = np.empty((batch, units), dtype=x.dtype)
    grad_c0 = np.empty_like(grad_h0)
    hard = x.dtype.type(_is_hard(recurrent_activation))  # a 0/1 weight in the loop's dtype
    _lstm_backward_loop(grad_hs, x, hs, cs, gates, h0, c0, weights, hard, parts, grad_x, grad_weights,
                        grad_bias, grad_h0, grad_c0)
    grad_weights = grad_weights.sum(axis=0)
    return (grad_x, grad_h0, grad_c0, grad_weights[:features], grad_weights[features:],
            grad_bias.sum(axis=0))


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
