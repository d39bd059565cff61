"""Numba twins of kernels/reference/recurrent.py: the same names, signatures, time-major
layout and equations (see there), with each step's gate math fused into one pass over
its (batch, units) elements instead of a chain of NumPy temporaries.

Only the time loops are compiled (`_*_loop`); the kernels around them are plain Python,
as in numba_cpu/conv.py: the weight gradients after the loop are the reference's single
BLAS products over the flattened (time * batch) axis, which keeps compile time low.
Inside the loops the per-step products h @ U and d a @ U^T are `np.dot` into
preallocated buffers, which calls BLAS (Numba needs SciPy for it); hand-written product
loops matched it at 32 units and took about twice as long for the product at 128.

What limits the loops is the scalar exp of every gate: NumPy's ufuncs run exp and tanh
with SIMD, Numba calls libm once per element. So sigmoid and tanh each take one exp and
no branch (see `_tanh`); libm's tanh alone cost about as much as the rest of the loop.
"""
import numpy as np
from numba import njit

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
@njit(cache=True)
def _lstm_forward_loop(projected, h0, c0, recurrent_kernel, hard):
    steps, batch, units = projected.shape[0], h0.shape[0], h0.shape[1]
    hs = np.empty((steps, batch, units), dtype=projected.dtype)
    cs = np.empty_like(hs)
    gates = np.empty_like(projected)
    a = np.empty((batch, 4 * units), dtype=projected.dtype)
    h, c = h0, c0
    for t in range(steps):
        np.dot(h, recurrent_kernel, a)
        for b in range(batch):
            for j in range(units):
                i = _gate(projected[t, b, j] + a[b, j], hard)
                f = _gate(projected[t, b, units + j] + a[b, units + j], hard)
                g = _tanh(projected[t, b, 2 * units + j] + a[b, 2 * units + j])
                o = _gate(projected[t, b, 3 * units + j] + a[b, 3 * units + j], hard)
                c_new = f * c[b, j] + i * g
                cs[t, b, j] = c_new
                hs[t, b, j] = o * _tanh(c_new)
                gates[t, b, j] = i
                gates[t, b, units + j] = f
                gates[t, b, 2 * units + j] = g
                gates[t, b, 3 * units + j] = o
        h, c = hs[t], cs[t]
    return hs, cs, gates


@njit(cache=True)
def _lstm_backward_loop(grad_hs, hs, cs, gates, c0, kernel_t, hard):
    steps, batch, units = hs.shape
    grad_projected = np.empty_like(gates)
    dh_next = np.zeros((batch, units), dtype=hs.dtype)
    dc_next = np.zeros((batch, units), dtype=hs.dtype)
    for t in range(steps - 1, -1, -1):
        c_prev = cs[t - 1] if t > 0 else c0
        for b in range(batch):
            for j in range(units):
                i = gates[t, b, j]
                f = gates[t, b, units + j]
                g = gates[t, b, 2 * units + j]
                o = gates[t, b, 3 * units + j]
                tanh_c = _tanh(cs[t, b, j])
                dh = grad_hs[t, b, j] + dh_next[b, j]
                dc = dh * o * (1.0 - tanh_c * tanh_c) + dc_next[b, j]
                grad_projected[t, b, j] = dc * g * _gate_derivative(i, hard)
                grad_projected[t, b, units + j] = dc * c_prev[b, j] * _gate_derivative(f, hard)
                grad_projected[t, b, 2 * units + j] = dc * i * (1.0 - g * g)
                grad_projected[t, b, 3 * units + j] = dh * tanh_c * _gate_derivative(o, hard)
                dc_next[b, j] = dc * f
        np.dot(grad_projected[t], kernel_t, dh_next)
    return grad_projected, dh_next, dc_next


def lstm_forward(projected, h0, c0, recurrent_kernel, recurrent_activation="sigmoid"):
    return _lstm_forward_loop(*_contiguous(projected, h0, c0, recurrent_kernel), _is_hard(recurrent_activation))


def lstm_backward(grad_hs, hs, cs, gates, h0, c0, recurrent_kernel, recurrent_activation="sigmoid"):
    grad_projected, grad_h0, grad_c0 = _lstm_backward_loop(
        *_contiguous(grad_hs, hs, cs, gates, c0, recurrent_kernel.T), _is_hard(recurrent_activation))
    return grad_projected, grad_h0, grad_c0, flat_product(previous_states(hs, h0), grad_projected)


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
