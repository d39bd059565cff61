"""Numba twins of kernels/reference/recurrent.py: the same names, signatures, time-major
layout and equations (see there), with the gate math fused into one pass over each
step's (batch, units) elements instead of a chain of NumPy temporaries.

The per-step recurrent products h @ U and d a @ U^T stay BLAS calls (`np.dot` inside
njit, written into preallocated buffers): hand-written product loops were no faster at
batch 32 and 2-4x slower at batch 256. The weight gradients are one BLAS product over the
flattened (time * batch) axis after the loop, as in the reference.

What limits these loops is the scalar exp/tanh of each gate (NumPy's ufuncs use SIMD,
Numba calls libm once per element), so both are written with one exp and no branch; see
`_tanh`. `np.dot` inside njit needs SciPy (Numba calls its BLAS).
"""
import numpy as np
from numba import njit


@njit(cache=True)
def _sigmoid(x):
    # exp(-x) overflows to inf for x < -88 (float32) and 1 / inf = 0 is the right limit;
    # Numba raises no floating-point warnings, so no branch is needed.
    return 1.0 / (1.0 + np.exp(-x))


@njit(cache=True)
def _tanh(x):
    """tanh(x) = 2 sigmoid(2x) - 1: one exp instead of libm's tanh, which costs ~7 exps
    here. Absolute error within 2 ulp of 1; the relative error grows for |x| << 1,
    harmless where the result is added to or multiplies O(1) values, as in every gate."""
    return 2.0 / (1.0 + np.exp(-2.0 * x)) - 1.0


@njit(cache=True)
def _previous_states(states, initial):
    """(time, batch, units): the state entering each step, with initial before step 0."""
    out = np.empty_like(states)
    out[0] = initial
    out[1:] = states[:-1]
    return out


@njit(cache=True)
def _flat_product(a, b):
    """sum over time and batch of a[t]^T @ b[t], as one product on the (T*B) axis."""
    a2 = np.ascontiguousarray(a).reshape(-1, a.shape[-1])
    b2 = np.ascontiguousarray(b).reshape(-1, b.shape[-1])
    return np.dot(np.ascontiguousarray(a2.T), b2)


# ------------------------------------------------------------------------- SimpleRNN
@njit(cache=True)
def rnn_forward(projected, h0, recurrent_kernel):
    steps, batch, units = projected.shape[0], h0.shape[0], h0.shape[1]
    hs = np.empty((steps, batch, units), dtype=projected.dtype)
    recurrent = np.empty((batch, units), dtype=projected.dtype)
    h = np.ascontiguousarray(h0)
    for t in range(steps):
        np.dot(h, recurrent_kernel, recurrent)
        for b in range(batch):
            for j in range(units):
                hs[t, b, j] = _tanh(projected[t, b, j] + recurrent[b, j])
        h = hs[t]
    return hs


@njit(cache=True)
def rnn_backward(grad_hs, hs, h0, recurrent_kernel):
    steps, batch, units = hs.shape
    kernel_t = np.ascontiguousarray(recurrent_kernel.T)
    grad_projected = np.empty_like(hs)
    dh_next = np.zeros((batch, units), dtype=hs.dtype)
    for t in range(steps - 1, -1, -1):
        for b in range(batch):
            for j in range(units):
                h = hs[t, b, j]
                grad_projected[t, b, j] = (grad_hs[t, b, j] + dh_next[b, j]) * (1.0 - h * h)
        np.dot(grad_projected[t], kernel_t, dh_next)
    return grad_projected, dh_next, _flat_product(_previous_states(hs, h0), grad_projected)


# ------------------------------------------------------------------------------ LSTM
@njit(cache=True)
def lstm_forward(projected, h0, c0, recurrent_kernel):
    steps, batch, units = projected.shape[0], h0.shape[0], h0.shape[1]
    hs = np.empty((steps, batch, units), dtype=projected.dtype)
    cs = np.empty_like(hs)
    gates = np.empty_like(projected)
    a = np.empty((batch, 4 * units), dtype=projected.dtype)
    h = np.ascontiguousarray(h0)
    c = np.ascontiguousarray(c0)
    for t in range(steps):
        np.dot(h, recurrent_kernel, a)
        for b in range(batch):
            for j in range(units):
                i = _sigmoid(projected[t, b, j] + a[b, j])
                f = _sigmoid(projected[t, b, units + j] + a[b, units + j])
                g = _tanh(projected[t, b, 2 * units + j] + a[b, 2 * units + j])
                o = _sigmoid(projected[t, b, 3 * units + j] + a[b, 3 * units + j])
                c_new = f * c[b, j] + i * g
                cs[t, b, j] = c_new
                hs[t, b, j] = o * _tanh(c_new)
                gates[t, b, j] = i
                gates[t, b, units + j] = f
                gates[t, b, 2 * units + j] = g
                gates[t, b, 3 * units + j] = o
        h = hs[t]
        c = cs[t]
    return hs, cs, gates


@njit(cache=True)
def lstm_backward(grad_hs, hs, cs, gates, h0, c0, recurrent_kernel):
    steps, batch, units = hs.shape
    kernel_t = np.ascontiguousarray(recurrent_kernel.T)
    grad_projected = np.empty_like(gates)
    dh_next = np.zeros((batch, units), dtype=hs.dtype)
    dc_next = np.zeros((batch, units), dtype=hs.dtype)
    c0 = np.ascontiguousarray(c0)
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
                grad_projected[t, b, j] = dc * g * i * (1.0 - i)
                grad_projected[t, b, units + j] = dc * c_prev[b, j] * f * (1.0 - f)
                grad_projected[t, b, 2 * units + j] = dc * i * (1.0 - g * g)
                grad_projected[t, b, 3 * units + j] = dh * tanh_c * o * (1.0 - o)
                dc_next[b, j] = dc * f
        np.dot(grad_projected[t], kernel_t, dh_next)
    return grad_projected, dh_next, dc_next, _flat_product(_previous_states(hs, h0), grad_projected)


# ------------------------------------------------------------------------------- GRU
@njit(cache=True)
def gru_forward(projected, h0, recurrent_kernel, recurrent_bias, reset_after):
    steps, batch, units = projected.shape[0], h0.shape[0], h0.shape[1]
    u_zr = np.ascontiguousarray(recurrent_kernel[:, :2 * units])
    u_h = np.ascontiguousarray(recurrent_kernel[:, 2 * units:])
    hs = np.empty((steps, batch, units), dtype=projected.dtype)
    gates = np.empty((steps, batch, 4 * units), dtype=projected.dtype)
    a_zr = np.empty((batch, 2 * units), dtype=projected.dtype)
    m = np.empty((batch, units), dtype=projected.dtype)
    reset_h = np.empty((batch, units), dtype=projected.dtype)
    h = np.ascontiguousarray(h0)
    for t in range(steps):
        np.dot(h, u_zr, a_zr)
        for b in range(batch):
            for j in range(2 * units):
                gates[t, b, j] = _sigmoid(projected[t, b, j] + a_zr[b, j] + recurrent_bias[j])
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
def gru_backward(grad_hs, hs, gates, h0, recurrent_kernel, reset_after):
    steps, batch, units = hs.shape
    u_zr_t = np.ascontiguousarray(recurrent_kernel[:, :2 * units].T)
    u_h_t = np.ascontiguousarray(recurrent_kernel[:, 2 * units:].T)
    h_prev_all = _previous_states(hs, h0)
    grad_projected = np.empty((steps, batch, 3 * units), dtype=hs.dtype)
    grad_m = np.empty_like(hs)
    d_zr = np.empty((batch, 2 * units), dtype=hs.dtype)
    via_zr = np.empty((batch, units), dtype=hs.dtype)
    via_m = np.empty((batch, units), dtype=hs.dtype)
    dh_next = np.zeros((batch, units), dtype=hs.dtype)
    for t in range(steps - 1, -1, -1):
        # d x_h and d m first: with reset_after=False, dr needs d m @ U_h^T.
        for b in range(batch):
            for j in range(units):
                z = gates[t, b, j]
                r = gates[t, b, units + j]
                hh = gates[t, b, 2 * units + j]
                d_xh = (grad_hs[t, b, j] + dh_next[b, j]) * (1.0 - z) * (1.0 - hh * hh)
                grad_projected[t, b, 2 * units + j] = d_xh
                grad_m[t, b, j] = d_xh * r if reset_after else d_xh
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
                d_zr[b, j] = dh * (h_prev - hh) * z * (1.0 - z)
                d_zr[b, units + j] = dr * r * (1.0 - r)
                grad_projected[t, b, j] = d_zr[b, j]
                grad_projected[t, b, units + j] = d_zr[b, units + j]
        np.dot(d_zr, u_zr_t, via_zr)
        dh_next += via_zr
    if reset_after:
        candidate_input = h_prev_all
    else:
        candidate_input = gates[:, :, units:2 * units] * h_prev_all
    grad_recurrent_kernel = np.empty((units, 3 * units), dtype=hs.dtype)
    grad_recurrent_kernel[:, :2 * units] = _flat_product(h_prev_all, grad_projected[:, :, :2 * units])
    grad_recurrent_kernel[:, 2 * units:] = _flat_product(candidate_input, grad_m)
    grad_recurrent_bias = np.zeros(3 * units, dtype=hs.dtype)
    for t in range(steps):
        for b in range(batch):
            for k in range(2 * units):
                grad_recurrent_bias[k] += grad_projected[t, b, k]
            for j in range(units):
                grad_recurrent_bias[2 * units + j] += grad_m[t, b, j]
    return grad_projected, dh_next, grad_recurrent_kernel, grad_recurrent_bias
