"""CuPy twins of kernels/reference/recurrent.py: the same names, signatures, time-major
layout and equations (see there for the math and the shapes).

Each time step is one cuBLAS product for the recurrent term (h @ U, or d a @ U^T going
back) and one fused elementwise kernel for all of the step's gate math, which reads the
input projection and the product and writes the new states and the saved gates straight
into the (time, batch, ...) outputs. The reference's chain of NumPy temporaries (a
dozen kernel launches and allocations per step) becomes two launches and no
allocation, so the Python side of the loop only queues work. A GRU with
reset_after=False needs r before its candidate product, so it takes two products and
two kernels per step. Going back, the products that must be added to a running
gradient use cuBLAS' beta = 1 (out = a @ b + out) instead of a separate addition.

Each elementwise kernel runs one thread per (batch row, unit) and indexes the gate
blocks of that unit, `row * G*units + g*units + j`, in the raw (batch, G*units) arrays.

The LSTM and GRU kernels are built once per recurrent activation (`_per_activation`):
their source calls MINIDL_GATE(x) and MINIDL_GATE_DERIVATIVE(s), defined in the preamble
as the sigmoid or hard_sigmoid functions below, so no kernel branches on the activation.
"""
import cupy
from cupy import cublas

from minidl.kernels.reference.recurrent import GATE_ACTIVATIONS, flat_product, gate_activation, previous_states

# Sigmoid as the reference evaluates it: e^-|x| is at most 1, so neither branch overflows.
# Keras 2's hard_sigmoid is clip(0.2 x + 0.5, 0, 1). The derivatives come from the gate
# value s, as in the reference's gate_derivative.
_GATE_FUNCTIONS = """
template <typename T> __device__ T minidl_sigmoid(T x) {
    const T e = exp(-fabs(x));
    return x >= (T)0 ? (T)1 / ((T)1 + e) : e / ((T)1 + e);
}
template <typename T> __device__ T minidl_sigmoid_derivative(T s) { return s * ((T)1 - s); }
template <typename T> __device__ T minidl_hard_sigmoid(T x) {
    const T y = (T)0.2 * x + (T)0.5;
    return y <= (T)0 ? (T)0 : (y >= (T)1 ? (T)1 : y);
}
template <typename T> __device__ T minidl_hard_sigmoid_derivative(T s) {
    return (s > (T)0 && s < (T)1) ? (T)0.2 : (T)0;
}
"""


def _per_activation(in_params, out_params, operation, name, preamble=""):
    """{recurrent activation: the ElementwiseKernel `name`_<activation>} for a kernel
    whose `operation` uses MINIDL_GATE and MINIDL_GATE_DERIVATIVE."""
    return {
        activation: cupy.ElementwiseKernel(
            in_params, out_params, operation, f"{name}_{activation}",
            preamble=_GATE_FUNCTIONS + preamble
            + f"#define MINIDL_GATE minidl_{activation}\n#define MINIDL_GATE_DERIVATIVE minidl_{activation}_derivative\n",
        )
        for activation in GATE_ACTIVATIONS
    }


def _for(kernels, recurrent_activation):
    """The kernel of `kernels` (from _per_activation) built for `recurrent_activation`."""
    gate_activation(recurrent_activation)  # an unknown name is a ValueError
    return kernels[recurrent_activation]

# ------------------------------------------------------------------------- SimpleRNN
_rnn_step = cupy.ElementwiseKernel(
    "T projected, T recurrent", "T h",
    "h = tanh(projected + recurrent)",
    "minidl_rnn_step",
)

_rnn_step_backward = cupy.ElementwiseKernel(
    "T grad_h, T dh_next, T h", "T d_pre",
    "d_pre = (grad_h + dh_next) * ((T)1 - h * h)",
    "minidl_rnn_step_backward",
)


def rnn_forward(projected, h0, recurrent_kernel):
    """h_t = tanh(projected_t + h_{t-1} @ U) -> hs (time, batch, units)."""
    steps, (batch, units) = projected.shape[0], h0.shape
    hs = cupy.empty((steps, batch, units), dtype=projected.dtype)
    recurrent = cupy.empty((batch, units), dtype=projected.dtype)
    h = h0
    for t in range(steps):
        cupy.matmul(h, recurrent_kernel, out=recurrent)
        _rnn_step(projected[t], recurrent, hs[t])
        h = hs[t]
    return hs


def rnn_backward(grad_hs, hs, h0, recurrent_kernel):
    """Returns grad_projected (T, B, units), grad_h0 (B, units), grad_recurrent_kernel."""
    steps, batch, units = hs.shape
    kernel_t = cupy.ascontiguousarray(recurrent_kernel.T)
    grad_projected = cupy.empty((steps, batch, units), dtype=hs.dtype)
    dh_next = cupy.zeros((batch, units), dtype=hs.dtype)
    for t in range(steps - 1, -1, -1):
        _rnn_step_backward(grad_hs[t], dh_next, hs[t], grad_projected[t])
        cupy.matmul(grad_projected[t], kernel_t, out=dh_next)
    return grad_projected, dh_next, flat_product(previous_states(hs, h0), grad_projected)


# ------------------------------------------------------------------------------ LSTM
# Gate order i, f, c (g), o, as Keras.
_lstm_step = _per_activation(
    "raw T projected, raw T recurrent, T c_prev, int64 units", "T h, T c, raw T gates",
    """
    const long long j = i % units, base = (i / units) * 4 * units + j;
    const T gate_i = MINIDL_GATE(projected[base] + recurrent[base]);
    const T gate_f = MINIDL_GATE(projected[base + units] + recurrent[base + units]);
    const T gate_g = tanh(projected[base + 2 * units] + recurrent[base + 2 * units]);
    const T gate_o = MINIDL_GATE(projected[base + 3 * units] + recurrent[base + 3 * units]);
    c = gate_f * c_prev + gate_i * gate_g;
    h = gate_o * tanh(c);
    gates[base] = gate_i;
    gates[base + units] = gate_f;
    gates[base + 2 * units] = gate_g;
    gates[base + 3 * units] = gate_o;
    """,
    "minidl_lstm_step",
)

# dc_next is read (the carry from step t+1) and then overwritten with the carry to t-1.
_lstm_step_backward = _per_activation(
    "T grad_h, T dh_next, raw T gates, T c, T c_prev, int64 units", "raw T d_a, T dc_next",
    """
    const long long j = i % units, base = (i / units) * 4 * units + j;
    const T gate_i = gates[base], gate_f = gates[base + units];
    const T gate_g = gates[base + 2 * units], gate_o = gates[base + 3 * units];
    const T tanh_c = tanh(c);
    const T dh = grad_h + dh_next;
    const T dc = dh * gate_o * ((T)1 - tanh_c * tanh_c) + dc_next;
    d_a[base] = dc * gate_g * MINIDL_GATE_DERIVATIVE(gate_i);
    d_a[base + units] = dc * c_prev * MINIDL_GATE_DERIVATIVE(gate_f);
    d_a[base + 2 * units] = dc * gate_i * ((T)1 - gate_g * gate_g);
    d_a[base + 3 * units] = dh * tanh_c * MINIDL_GATE_DERIVATIVE(gate_o);
    dc_next = dc * gate_f;
    """,
    "minidl_lstm_step_backward",
)


def lstm_forward(x, h0, c0, kernel, recurrent_kernel, bias, recurrent_activation="sigmoid",
                 return_sequences=True, save=True):
    """Returns hs (time, batch, units), only the last step when neither
    `return_sequences` nor `save`, and when `save` cs and gates (i, f, g, o); the loop
    runs on the input projection, made by one product first."""
    step = _for(_lstm_step, recurrent_activation)
    batch, steps, features = x.shape
    units = h0.shape[1]
    x_tm = cupy.ascontiguousarray(x.transpose(1, 0, 2))
    projected = (x_tm.reshape(steps * batch, features) @ kernel + bias).reshape(steps, batch, 4 * units)
    hs = cupy.empty((steps, batch, units), dtype=x.dtype)
    cs = cupy.empty_like(hs)
    gates = cupy.empty((steps, batch, 4 * units), dtype=x.dtype)
    recurrent = cupy.empty((batch, 4 * units), dtype=x.dtype)
    h, c = h0, c0
    for t in range(steps):
        cupy.matmul(h, recurrent_kernel, out=recurrent)
        step(projected[t], recurrent, c, units, hs[t], cs[t], gates[t])
        h, c = hs[t], cs[t]
    if save:
        return hs, cs, gates
    return (hs if return_sequences else hs[-1:]), None, None


def lstm_backward(grad_hs, x, hs, cs, gates, h0, c0, kernel, recurrent_kernel, recurrent_activation="sigmoid"):
    """Returns grad_x (batch, time, features), grad_h0, grad_c0, grad_kernel,
    grad_recurrent_kernel, grad_bias; `grad_hs` (time, batch, units) or (1, batch,
    units) for the last step alone."""
    step_backward = _for(_lstm_step_backward, recurrent_activation)
    steps, batch, units = hs.shape
    full = grad_hs.shape[0] == steps
    kernel_t = cupy.ascontiguousarray(recurrent_kernel.T)
    gates = cupy.ascontiguousarray(gates)
    zeros = cupy.zeros((batch, units), dtype=hs.dtype)
    grad_projected = cupy.empty((steps, batch, 4 * units), dtype=hs.dtype)
    dh_next = zeros.copy() if full else cupy.array(grad_hs[0])
    dc_next = cupy.zeros((batch, units), dtype=hs.dtype)
    for t in range(steps - 1, -1, -1):
        c_prev = cs[t - 1] if t > 0 else c0
        step_backward(grad_hs[t] if full else zeros, dh_next, gates[t], cs[t], c_prev, units,
                      grad_projected[t], dc_next)
        cupy.matmul(grad_projected[t], kernel_t, out=dh_next)
    flat = grad_projected.reshape(steps * batch, 4 * units)
    x_tm = cupy.ascontiguousarray(x.transpose(1, 0, 2)).reshape(steps * batch, -1)
    grad_x = (flat @ kernel.T).reshape(steps, batch, -1).transpose(1, 0, 2)
    grad_recurrent = flat_product(previous_states(hs, h0), grad_projected)
    return grad_x, dh_next, dc_next, x_tm.T @ flat, grad_recurrent, flat.sum(axis=0)


# ------------------------------------------------------------------------------- GRU
# Gate order z, r, h, as Keras; `projected` and `recurrent` rows hold 3*units values,
# `gates` rows 4*units: z, r, hh and m (the candidate's recurrent term).
_GRU_PREAMBLE = """
#define MINIDL_GRU_INDICES \\
    const long long j = i % units, row = i / units; \\
    const long long p = row * 3 * units + j, g = row * 4 * units + j;
"""

# reset_after=True (Keras' default): m = h_{t-1} @ U_h + b_rh comes from the same product.
_gru_step_reset_after = _per_activation(
    "raw T projected, raw T recurrent, raw T recurrent_bias, T h_prev, int64 units", "T h, raw T gates",
    """
    MINIDL_GRU_INDICES
    const T z = MINIDL_GATE(projected[p] + recurrent[p] + recurrent_bias[j]);
    const T r = MINIDL_GATE(projected[p + units] + recurrent[p + units] + recurrent_bias[units + j]);
    const T m = recurrent[p + 2 * units] + recurrent_bias[2 * units + j];
    const T hh = tanh(projected[p + 2 * units] + r * m);
    h = z * h_prev + ((T)1 - z) * hh;
    gates[g] = z;
    gates[g + units] = r;
    gates[g + 2 * units] = hh;
    gates[g + 3 * units] = m;
    """,
    "minidl_gru_step_reset_after",
    preamble=_GRU_PREAMBLE,
)

# reset_after=False, first half: z and r from h_{t-1} @ U_zr (rows of 2*units), and the
# reset state r * h_{t-1} that the candidate's product needs.
_gru_gates_reset_before = _per_activation(
    "raw T projected, raw T recurrent, raw T recurrent_bias, T h_prev, int64 units",
    "T reset_h, raw T gates",
    """
    MINIDL_GRU_INDICES
    const long long q = row * 2 * units + j;
    const T z = MINIDL_GATE(projected[p] + recurrent[q] + recurrent_bias[j]);
    const T r = MINIDL_GATE(projected[p + units] + recurrent[q + units] + recurrent_bias[units + j]);
    reset_h = r * h_prev;
    gates[g] = z;
    gates[g + units] = r;
    """,
    "minidl_gru_gates_reset_before",
    preamble=_GRU_PREAMBLE,
)

# reset_after=False, second half: m = (r * h_{t-1}) @ U_h + b_rh, then the candidate and h.
_gru_candidate_reset_before = cupy.ElementwiseKernel(
    "raw T projected, T reset_product, raw T recurrent_bias, T h_prev, int64 units", "T h, raw T gates",
    """
    MINIDL_GRU_INDICES
    const T z = gates[g];
    const T m = reset_product + recurrent_bias[2 * units + j];
    const T hh = tanh(projected[p + 2 * units] + m);
    h = z * h_prev + ((T)1 - z) * hh;
    gates[g + 2 * units] = hh;
    gates[g + 3 * units] = m;
    """,
    "minidl_gru_candidate_reset_before",
    preamble=_GRU_PREAMBLE,
)


def gru_forward(projected, h0, recurrent_kernel, recurrent_bias, reset_after, recurrent_activation="sigmoid"):
    """Returns hs (time, batch, units) and gates (time, batch, 4*units): z, r, hh, m."""
    # The kernel that evaluates z and r: the whole step with reset_after, its first half without.
    gate_kernel = _for(_gru_step_reset_after if reset_after else _gru_gates_reset_before, recurrent_activation)
    steps, (batch, units) = projected.shape[0], h0.shape
    dtype = projected.dtype
    hs = cupy.empty((steps, batch, units), dtype=dtype)
    gates = cupy.empty((steps, batch, 4 * units), dtype=dtype)
    recurrent_bias = cupy.ascontiguousarray(recurrent_bias)
    h = h0
    if reset_after:
        recurrent = cupy.empty((batch, 3 * units), dtype=dtype)
        for t in range(steps):
            cupy.matmul(h, recurrent_kernel, out=recurrent)
            gate_kernel(projected[t], recurrent, recurrent_bias, h, units, hs[t], gates[t])
            h = hs[t]
        return hs, gates
    u_zr = cupy.ascontiguousarray(recurrent_kernel[:, :2 * units])
    u_h = cupy.ascontiguousarray(recurrent_kernel[:, 2 * units:])
    recurrent = cupy.empty((batch, 2 * units), dtype=dtype)
    reset_h = cupy.empty((batch, units), dtype=dtype)
    reset_product = cupy.empty((batch, units), dtype=dtype)
    for t in range(steps):
        cupy.matmul(h, u_zr, out=recurrent)
        gate_kernel(projected[t], recurrent, recurrent_bias, h, units, reset_h, gates[t])
        cupy.matmul(reset_h, u_h, out=reset_product)
        _gru_candidate_reset_before(projected[t], reset_product, recurrent_bias, h, units, hs[t], gates[t])
        h = hs[t]
    return hs, gates


# reset_after=True, going back. dh_next is read (the carry from step t+1) and replaced by
# dh z; the caller then adds [d a_z, d a_r, d m] @ U^T to it with one cuBLAS product.
_gru_step_backward_reset_after = _per_activation(
    "T grad_h, raw T gates, T h_prev, int64 units",
    "T dh_next, raw T grad_projected, T grad_m, raw T d_recurrent",
    """
    MINIDL_GRU_INDICES
    const T z = gates[g], r = gates[g + units], hh = gates[g + 2 * units], m = gates[g + 3 * units];
    const T dh = grad_h + dh_next;
    const T d_xh = dh * ((T)1 - z) * ((T)1 - hh * hh);
    const T d_az = dh * (h_prev - hh) * MINIDL_GATE_DERIVATIVE(z);
    const T d_ar = d_xh * m * MINIDL_GATE_DERIVATIVE(r);
    grad_projected[p] = d_az;
    grad_projected[p + units] = d_ar;
    grad_projected[p + 2 * units] = d_xh;
    grad_m = d_xh * r;
    d_recurrent[p] = d_az;
    d_recurrent[p + units] = d_ar;
    d_recurrent[p + 2 * units] = d_xh * r;
    dh_next = dh * z;
    """,
    "minidl_gru_step_backward_reset_after",
    preamble=_GRU_PREAMBLE,
)

# reset_after=False, going back, first half: d x_h = d m, before the product d m @ U_h^T.
_gru_candidate_backward_reset_before = cupy.ElementwiseKernel(
    "T grad_h, T dh_next, raw T gates, int64 units", "raw T grad_projected, T grad_m",
    """
    MINIDL_GRU_INDICES
    const T z = gates[g], hh = gates[g + 2 * units];
    const T d_xh = (grad_h + dh_next) * ((T)1 - z) * ((T)1 - hh * hh);
    grad_projected[p + 2 * units] = d_xh;
    grad_m = d_xh;
    """,
    "minidl_gru_candidate_backward_reset_before",
    preamble=_GRU_PREAMBLE,
)

# reset_after=False, second half, from d(r h_{t-1}) = d m @ U_h^T. dh_next is read and
# replaced by dh z + d(r h_{t-1}) r; the caller adds [d a_z, d a_r] @ U_zr^T to it.
_gru_gates_backward_reset_before = _per_activation(
    "T grad_h, T d_reset_h, raw T gates, T h_prev, int64 units",
    "T dh_next, raw T grad_projected, raw T d_zr",
    """
    MINIDL_GRU_INDICES
    const long long q = row * 2 * units + j;
    const T z = gates[g], r = gates[g + units], hh = gates[g + 2 * units];
    const T dh = grad_h + dh_next;
    const T d_az = dh * (h_prev - hh) * MINIDL_GATE_DERIVATIVE(z);
    const T d_ar = d_reset_h * h_prev * MINIDL_GATE_DERIVATIVE(r);
    grad_projected[p] = d_az;
    grad_projected[p + units] = d_ar;
    d_zr[q] = d_az;
    d_zr[q + units] = d_ar;
    dh_next = dh * z + d_reset_h * r;
    """,
    "minidl_gru_gates_backward_reset_before",
    preamble=_GRU_PREAMBLE,
)


def gru_backward(grad_hs, hs, gates, h0, recurrent_kernel, reset_after, recurrent_activation="sigmoid"):
    """Returns grad_projected (T, B, 3*units), grad_h0, grad_recurrent_kernel and
    grad_recurrent_bias (3*units,)."""
    # The kernel that differentiates z and r: the whole step with reset_after, the second half without.
    gate_kernel = _for(_gru_step_backward_reset_after if reset_after else _gru_gates_backward_reset_before,
                       recurrent_activation)
    steps, batch, units = hs.shape
    dtype = hs.dtype
    gates = cupy.ascontiguousarray(gates)
    grad_projected = cupy.empty((steps, batch, 3 * units), dtype=dtype)
    grad_m = cupy.empty((steps, batch, units), dtype=dtype)  # d loss / d m, per step
    dh_next = cupy.zeros((batch, units), dtype=dtype)
    if reset_after:
        recurrent_kernel = cupy.ascontiguousarray(recurrent_kernel)
        d_recurrent = cupy.empty((batch, 3 * units), dtype=dtype)
        for t in range(steps - 1, -1, -1):
            h_prev = hs[t - 1] if t > 0 else h0
            gate_kernel(grad_hs[t], gates[t], h_prev, units, dh_next, grad_projected[t], grad_m[t], d_recurrent)
            cublas.gemm("N", "T", d_recurrent, recurrent_kernel, out=dh_next, beta=1.0)
    else:
        u_zr = cupy.ascontiguousarray(recurrent_kernel[:, :2 * units])
        u_h = cupy.ascontiguousarray(recurrent_kernel[:, 2 * units:])
        d_reset_h = cupy.empty((batch, units), dtype=dtype)
        d_zr = cupy.empty((batch, 2 * units), dtype=dtype)
        for t in range(steps - 1, -1, -1):
            h_prev = hs[t - 1] if t > 0 else h0
            _gru_candidate_backward_reset_before(grad_hs[t], dh_next, gates[t], units, grad_projected[t], grad_m[t])
            cublas.gemm("N", "T", grad_m[t], u_h, out=d_reset_h)
            gate_kernel(grad_hs[t], d_reset_h, gates[t], h_prev, units, dh_next, grad_projected[t], d_zr)
            cublas.gemm("N", "T", d_zr, u_zr, out=dh_next, beta=1.0)
    h_prev_all = previous_states(hs, h0)
    # U_h multiplies h_{t-1} (reset_after) or r * h_{t-1} (not): its gradient pairs d m with that.
    candidate_input = h_prev_all if reset_after else gates[:, :, units:2 * units] * h_prev_all
    grad_recurrent_kernel = cupy.concatenate([
        flat_product(h_prev_all, grad_projected[:, :, :2 * units]),
        flat_product(candidate_input, grad_m),
    ], axis=1)
    grad_recurrent_bias = cupy.concatenate([
        grad_projected[:, :, :2 * units].sum(axis=(0, 1)), grad_m.sum(axis=(0, 1))
    ])
    return grad_projected, dh_next, grad_recurrent_kernel, grad_recurrent_bias
