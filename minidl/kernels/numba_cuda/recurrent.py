"""Numba CUDA twins of kernels/reference/recurrent.py: the same names, signatures,
time-major layout and equations (see there for the math and the shapes). They take CuPy
arrays on a GPU, or NumPy arrays under Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1),
allocate with the inputs' array module and launch on CuPy's current stream.

Each sequence runs in one of two forms, picked in one place (`persistent_rows`):

- **persistent** (Diamos et al. 2016, "Persistent RNNs"): one launch for the whole
  sequence. Each block owns a slice of the batch (`rows` rows), copies the recurrent
  matrix U into shared memory once, keeps its rows' states there too, and loops over the
  time steps with a block barrier (`cuda.syncthreads`) between them; each thread computes
  the recurrent product of its (row, unit) elements from shared memory. Going forward
  the block holds U (units, G*units), so the threads of consecutive units read
  consecutive words; going back it holds U^T (G*units, units) for the same reason.
  Rows never interact, so blocks never wait for each other.
- **per step**: where U and one row's states do not fit in SHARED_BYTES, each step is
  a matrix product of the array module (cuBLAS on CuPy) and one kernel for the step's
  gate math, one thread per (row, unit), as the CuPy design before it.

Both forms call the same device functions for the cell's math, so they differ only in
where the recurrent product comes from. Backward, the kernels write the per-step
gradients of the pre-activations; the weight gradients are then single products and
sums over the flattened (time * batch) rows, as in the reference, so they are
deterministic.

The LSTM and GRU kernels are built once per recurrent activation (and the shared
array's dtype, which a kernel must know when it is compiled): the gate and its
derivative are device functions chosen then, so no kernel branches on the activation.
"""
import functools
import math
from types import SimpleNamespace

import numpy as np
from numba import cuda

from minidl.backend import get_array_module
from minidl.kernels.numba_cuda import launch, persistent
from minidl.kernels.numba_cuda.persistent import (
    block_elements,
    contiguous,
    dot,
    fill,
    gate_functions,
    load_matrix,
    load_rows,
)
from minidl.kernels.reference.recurrent import (
    flat_product,
    gru_weight_gradients,
    previous_states,
)


# ------------------------------------------------------------------------- SimpleRNN
@functools.cache
def _rnn_kernels(dtype, capacity):
    dtype = np.dtype(dtype).type

    @cuda.jit
    def persistent_forward(projected, h0, recurrent_kernel, rows, hs):
        # Shared: U (units, units), then h_{t-1} and h_t of the block's rows (double buffer).
        batch, units = h0.shape
        shared = cuda.shared.array(capacity, dtype)
        first, count = block_elements(rows, batch, units)
        h_at = units * units
        load_matrix(shared, recurrent_kernel)
        load_rows(shared, h_at, h0, first, count)
        cuda.syncthreads()
        for t in range(projected.shape[0]):
            now = h_at + (t % 2) * rows * units
            after = h_at + ((t + 1) % 2) * rows * units
            for e in range(cuda.threadIdx.x, count, cuda.blockDim.x):
                r, j = e // units, e % units
                h = math.tanh(projected[t, first + r, j] + dot(shared, now + r * units, j, units, units))
                hs[t, first + r, j] = h
                shared[after + e] = h
            cuda.syncthreads()

    @cuda.jit
    def persistent_backward(grad_hs, hs, kernel_t, rows, grad_projected, grad_h0):
        # Shared: U^T, then d pre of steps t+1 and t (double buffer, zero after the last step).
        steps, batch, units = hs.shape
        shared = cuda.shared.array(capacity, dtype)
        first, count = block_elements(rows, batch, units)
        d_at = units * units
        load_matrix(shared, kernel_t)
        fill(shared, d_at, count, 0.0)
        cuda.syncthreads()
        for t in range(steps - 1, -1, -1):
            now = d_at + ((steps - 1 - t) % 2) * rows * units
            after = d_at + ((steps - t) % 2) * rows * units
            for e in range(cuda.threadIdx.x, count, cuda.blockDim.x):
                r, j = e // units, e % units
                b = first + r
                # dh = grad_hs[t] + d pre_{t+1} @ U^T;  d pre = dh (1 - h^2)
                dh = grad_hs[t, b, j] + dot(shared, now + r * units, j, units, units)
                d_pre = dh * (1.0 - hs[t, b, j] * hs[t, b, j])
                grad_projected[t, b, j] = d_pre
                shared[after + e] = d_pre
            cuda.syncthreads()
        last = d_at + (steps % 2) * rows * units
        for e in range(cuda.threadIdx.x, count, cuda.blockDim.x):
            r, j = e // units, e % units
            grad_h0[first + r, j] = dot(shared, last + r * units, j, units, units)

    @cuda.jit
    def step_forward(projected_t, recurrent, h):
        e = cuda.grid(1)
        batch, units = h.shape
        if e < batch * units:
            b, j = e // units, e % units
            h[b, j] = math.tanh(projected_t[b, j] + recurrent[b, j])

    @cuda.jit
    def step_backward(grad_h, dh_next, h, d_pre):
        e = cuda.grid(1)
        batch, units = h.shape
        if e < batch * units:
            b, j = e // units, e % units
            d_pre[b, j] = (grad_h[b, j] + dh_next[b, j]) * (1.0 - h[b, j] * h[b, j])

    return SimpleNamespace(persistent_forward=persistent_forward, persistent_backward=persistent_backward,
                           step_forward=step_forward, step_backward=step_backward)


def _rnn_rows(batch, units, dtype):
    # U, and per row two buffers of states (forward h, backward d pre).
    return persistent.persistent_rows(batch, units, units * units, 2 * units, dtype)


def rnn_forward(projected, h0, recurrent_kernel):
    """h_t = tanh(projected_t + h_{t-1} @ U) -> hs (time, batch, units)."""
    xp = get_array_module(projected)
    projected, h0, recurrent_kernel = contiguous(projected, h0, recurrent_kernel)
    steps, (batch, units), dtype = projected.shape[0], h0.shape, projected.dtype
    hs = xp.empty((steps, batch, units), dtype=dtype)
    rows = _rnn_rows(batch, units, dtype)
    run = _rnn_kernels(dtype, persistent.capacity(dtype))
    if rows:
        persistent.launch_persistent(run.persistent_forward, batch, units, rows, projected, h0, recurrent_kernel, rows, hs)
        return hs
    recurrent = xp.empty((batch, units), dtype=dtype)
    h = h0
    for t in range(steps):
        xp.matmul(h, recurrent_kernel, out=recurrent)
        launch.launch(run.step_forward, batch * units, projected[t], recurrent, hs[t])
        h = hs[t]
    return hs


def rnn_backward(grad_hs, hs, h0, recurrent_kernel):
    """Returns grad_projected (T, B, units), grad_h0 (B, units), grad_recurrent_kernel."""
    xp = get_array_module(grad_hs)
    grad_hs, hs = contiguous(grad_hs, hs)
    (steps, batch, units), dtype = hs.shape, hs.dtype
    kernel_t = xp.ascontiguousarray(recurrent_kernel.T)
    grad_projected = xp.empty((steps, batch, units), dtype=dtype)
    rows = _rnn_rows(batch, units, dtype)
    run = _rnn_kernels(dtype, persistent.capacity(dtype))
    if rows:
        grad_h0 = xp.empty((batch, units), dtype=dtype)
        persistent.launch_persistent(run.persistent_backward, batch, units, rows, grad_hs, hs, kernel_t, rows,
                           grad_projected, grad_h0)
    else:
        grad_h0 = xp.zeros((batch, units), dtype=dtype)  # dh_next, the carry into step t
        for t in range(steps - 1, -1, -1):
            launch.launch(run.step_backward, batch * units, grad_hs[t], grad_h0, hs[t], grad_projected[t])
            xp.matmul(grad_projected[t], kernel_t, out=grad_h0)
    return grad_projected, grad_h0, flat_product(previous_states(hs, h0), grad_projected)


# ------------------------------------------------------------------------------ LSTM
@functools.cache
def _lstm_kernels(recurrent_activation, dtype, capacity):
    gate, slope = gate_functions(recurrent_activation)
    dtype = np.dtype(dtype).type

    @cuda.jit(device=True)
    def cell(a_i, a_f, a_g, a_o, c_prev):
        """Keras' gate order i, f, c (g), o: pre-activations -> i, f, g, o, c_t, h_t."""
        i, f, g, o = gate(a_i), gate(a_f), math.tanh(a_g), gate(a_o)
        c = f * c_prev + i * g
        return i, f, g, o, c, o * math.tanh(c)

    @cuda.jit(device=True)
    def cell_backward(dh, dc_next, i, f, g, o, c, c_prev):
        """-> d a_i, d a_f, d a_g, d a_o and the carry dc f (see reference.lstm_backward)."""
        tanh_c = math.tanh(c)
        # dc = dh o (1 - tanh(c)^2) + dc_next; each gate's d a = d(its output) s'(gate)
        dc = dh * o * (1.0 - tanh_c * tanh_c) + dc_next
        return (dc * g * slope(i), dc * c_prev * slope(f), dc * i * (1.0 - g * g), dh * tanh_c * slope(o),
                dc * f)

    @cuda.jit
    def persistent_forward(projected, h0, c0, recurrent_kernel, rows, save, hs, cs, gates):
        # Shared: U (units, 4 units), h_{t-1} and h_t (double buffer), then c of the rows.
        steps = projected.shape[0]
        batch, units = h0.shape
        width = 4 * units
        keep_all = hs.shape[0] == steps
        shared = cuda.shared.array(capacity, dtype)
        first, count = block_elements(rows, batch, units)
        h_at = units * width
        c_at = h_at + 2 * rows * units
        load_matrix(shared, recurrent_kernel)
        load_rows(shared, h_at, h0, first, count)
        load_rows(shared, c_at, c0, first, count)
        cuda.syncthreads()
        for t in range(steps):
            now = h_at + (t % 2) * rows * units
            after = h_at + ((t + 1) % 2) * rows * units
            for e in range(cuda.threadIdx.x, count, cuda.blockDim.x):
                r, j = e // units, e % units
                b, row = first + r, now + r * units
                i, f, g, o, c, h = cell(
                    projected[t, b, j] + dot(shared, row, j, width, units),
                    projected[t, b, units + j] + dot(shared, row, units + j, width, units),
                    projected[t, b, 2 * units + j] + dot(shared, row, 2 * units + j, width, units),
                    projected[t, b, 3 * units + j] + dot(shared, row, 3 * units + j, width, units),
                    shared[c_at + e])
                shared[c_at + e] = c
                shared[after + e] = h
                if keep_all or t == steps - 1:
                    hs[t if keep_all else 0, b, j] = h
                if save:
                    cs[t, b, j] = c
                    gates[t, b, j] = i
                    gates[t, b, units + j] = f
                    gates[t, b, 2 * units + j] = g
                    gates[t, b, 3 * units + j] = o
            cuda.syncthreads()

    @cuda.jit
    def persistent_backward(grad_hs, cs, gates, c0, kernel_t, rows, grad_a, grad_h0, grad_c0):
        # Shared: U^T (4 units, units), d a of steps t+1 and t (double buffer, zero after
        # the last step), then the carry dc of the rows.
        steps, batch, units = cs.shape
        width = 4 * units
        full = grad_hs.shape[0] == steps  # else the gradient of the last step alone
        shared = cuda.shared.array(capacity, dtype)
        first, count = block_elements(rows, batch, units)
        d_at = width * units
        dc_at = d_at + 2 * rows * width
        load_matrix(shared, kernel_t)
        fill(shared, d_at, rows * width, 0.0)
        fill(shared, dc_at, count, 0.0)
        cuda.syncthreads()
        for t in range(steps - 1, -1, -1):
            now = d_at + ((steps - 1 - t) % 2) * rows * width
            after = d_at + ((steps - t) % 2) * rows * width
            for e in range(cuda.threadIdx.x, count, cuda.blockDim.x):
                r, j = e // units, e % units
                b = first + r
                # dh = grad_hs[t] + d a_{t+1} @ U^T
                dh = dot(shared, now + r * width, j, units, width)
                if full:
                    dh += grad_hs[t, b, j]
                elif t == steps - 1:
                    dh += grad_hs[0, b, j]
                c_prev = cs[t - 1, b, j] if t > 0 else c0[b, j]
                d_i, d_f, d_g, d_o, dc = cell_backward(
                    dh, shared[dc_at + e], gates[t, b, j], gates[t, b, units + j], gates[t, b, 2 * units + j],
                    gates[t, b, 3 * units + j], cs[t, b, j], c_prev)
                shared[dc_at + e] = dc
                grad_a[t, b, j] = d_i
                grad_a[t, b, units + j] = d_f
                grad_a[t, b, 2 * units + j] = d_g
                grad_a[t, b, 3 * units + j] = d_o
                d_row = after + r * width
                shared[d_row + j] = d_i
                shared[d_row + units + j] = d_f
                shared[d_row + 2 * units + j] = d_g
                shared[d_row + 3 * units + j] = d_o
            cuda.syncthreads()
        last = d_at + (steps % 2) * rows * width
        for e in range(cuda.threadIdx.x, count, cuda.blockDim.x):
            r, j = e // units, e % units
            grad_h0[first + r, j] = dot(shared, last + r * width, j, units, width)
            grad_c0[first + r, j] = shared[dc_at + e]

    @cuda.jit
    def step_forward(projected_t, recurrent, c_prev, h, c, gates_t):
        e = cuda.grid(1)
        batch, units = h.shape
        if e < batch * units:
            b, j = e // units, e % units
            i, f, g, o, c_t, h_t = cell(
                projected_t[b, j] + recurrent[b, j],
                projected_t[b, units + j] + recurrent[b, units + j],
                projected_t[b, 2 * units + j] + recurrent[b, 2 * units + j],
                projected_t[b, 3 * units + j] + recurrent[b, 3 * units + j],
                c_prev[b, j])
            c[b, j] = c_t
            h[b, j] = h_t
            gates_t[b, j] = i
            gates_t[b, units + j] = f
            gates_t[b, 2 * units + j] = g
            gates_t[b, 3 * units + j] = o

    @cuda.jit
    def step_backward(grad_h, dh_next, gates_t, c, c_prev, d_a, dc_next):
        # dc_next is read (the carry from step t+1) and replaced by the carry to t-1.
        e = cuda.grid(1)
        batch, units = c.shape
        if e < batch * units:
            b, j = e // units, e % units
            d_i, d_f, d_g, d_o, dc_next[b, j] = cell_backward(
                grad_h[b, j] + dh_next[b, j], dc_next[b, j], gates_t[b, j], gates_t[b, units + j],
                gates_t[b, 2 * units + j], gates_t[b, 3 * units + j], c[b, j], c_prev[b, j])
            d_a[b, j] = d_i
            d_a[b, units + j] = d_f
            d_a[b, 2 * units + j] = d_g
            d_a[b, 3 * units + j] = d_o

    return SimpleNamespace(persistent_forward=persistent_forward, persistent_backward=persistent_backward,
                           step_forward=step_forward, step_backward=step_backward)


def _time_major_rows(x):
    """x (batch, time, features) -> (time * batch, features), step t's rows together."""
    xp = get_array_module(x)
    return xp.ascontiguousarray(x.transpose(1, 0, 2)).reshape(x.shape[0] * x.shape[1], x.shape[2])


def lstm_forward(x, h0, c0, kernel, recurrent_kernel, bias, recurrent_activation="sigmoid",
                 return_sequences=True, save=True):
    """Returns hs (time, batch, units), only the last step when neither
    `return_sequences` nor `save`, and when `save` cs and gates (i, f, g, o)."""
    xp = get_array_module(x)
    h0, c0, recurrent_kernel = contiguous(h0, c0, recurrent_kernel)
    batch, steps, _ = x.shape
    units, dtype = h0.shape[1], x.dtype
    # The input product x_t @ W + b of every step, one product before the loop.
    projected = (_time_major_rows(x) @ kernel + bias).reshape(steps, batch, 4 * units)
    # U, and per row two buffers of h and one of c.
    rows = persistent.persistent_rows(batch, units, 4 * units * units, 3 * units, dtype)
    run = _lstm_kernels(recurrent_activation, dtype, persistent.capacity(dtype))
    if rows:
        hs = xp.empty((steps if return_sequences or save else 1, batch, units), dtype=dtype)
        # Without `save` nothing but h is written: one-element placeholders keep the types.
        cs = xp.empty((steps, batch, units) if save else (1, 1, 1), dtype=dtype)
        gates = xp.empty((steps, batch, 4 * units) if save else (1, 1, 1), dtype=dtype)
        persistent.launch_persistent(run.persistent_forward, batch, units, rows, projected, h0, c0, recurrent_kernel, rows,
                           bool(save), hs, cs, gates)
        return (hs, cs, gates) if save else (hs, None, None)
    hs = xp.empty((steps, batch, units), dtype=dtype)
    cs = xp.empty_like(hs)
    gates = xp.empty((steps, batch, 4 * units), dtype=dtype)
    recurrent = xp.empty((batch, 4 * units), dtype=dtype)
    h, c = h0, c0
    for t in range(steps):
        xp.matmul(h, recurrent_kernel, out=recurrent)
        launch.launch(run.step_forward, batch * units, projected[t], recurrent, c, hs[t], cs[t], gates[t])
        h, c = hs[t], cs[t]
    if save:
        return hs, cs, gates
    return (hs if return_sequences else hs[-1:]), None, None


def lstm_backward(grad_hs, x, hs, cs, gates, h0, c0, kernel, recurrent_kernel, recurrent_activation="sigmoid"):
    """Returns grad_x (batch, time, features), grad_h0, grad_c0, grad_kernel,
    grad_recurrent_kernel, grad_bias; `grad_hs` (time, batch, units) or (1, batch,
    units) for the last step alone."""
    xp = get_array_module(grad_hs)
    grad_hs, cs, gates, c0 = contiguous(grad_hs, cs, gates, c0)
    steps, batch, units = hs.shape
    dtype = hs.dtype
    kernel_t = xp.ascontiguousarray(recurrent_kernel.T)
    grad_a = xp.empty((steps, batch, 4 * units), dtype=dtype)
    grad_c0 = xp.zeros((batch, units), dtype=dtype)
    # U^T, and per row two buffers of d a and one of dc.
    rows = persistent.persistent_rows(batch, units, 4 * units * units, 9 * units, dtype)
    run = _lstm_kernels(recurrent_activation, dtype, persistent.capacity(dtype))
    if rows:
        grad_h0 = xp.empty((batch, units), dtype=dtype)
        persistent.launch_persistent(run.persistent_backward, batch, units, rows, grad_hs, cs, gates, c0, kernel_t, rows,
                           grad_a, grad_h0, grad_c0)
    else:
        full = grad_hs.shape[0] == steps
        zeros = xp.zeros((batch, units), dtype=dtype)
        # grad_h0 and grad_c0 carry dh_next and dc_next back through the steps.
        grad_h0 = zeros.copy() if full else xp.array(grad_hs[0])
        for t in range(steps - 1, -1, -1):
            c_prev = cs[t - 1] if t > 0 else c0
            launch.launch(run.step_backward, batch * units, grad_hs[t] if full else zeros, grad_h0, gates[t],
                          cs[t], c_prev, grad_a[t], grad_c0)
            xp.matmul(grad_a[t], kernel_t, out=grad_h0)
    flat = grad_a.reshape(steps * batch, 4 * units)
    x_tm = _time_major_rows(x)
    grad_x = (flat @ kernel.T).reshape(steps, batch, -1).transpose(1, 0, 2)
    grad_recurrent = flat_product(previous_states(hs, h0), grad_a)
    return grad_x, grad_h0, grad_c0, x_tm.T @ flat, grad_recurrent, flat.sum(axis=0)


# ------------------------------------------------------------------------------- GRU
@functools.cache
def _gru_kernels(recurrent_activation, reset_after, dtype, capacity):
    # Every step has two halves: z and r (and the candidate's product operand), then the
    # candidate m, hh and h, which need the whole row's operand; going back, d x_h and
    # d m, then z's and r's gradients, which need d m @ U_h^T. Both reset forms share
    # this shape and differ only in the device functions below.
    gate, slope = gate_functions(recurrent_activation)
    dtype = np.dtype(dtype).type

    @cuda.jit(device=True)
    def gates_zr(a_z, a_r, h_prev):
        """-> z, r and the operand of the candidate's product: h_{t-1} when reset_after,
        else r * h_{t-1}."""
        z, r = gate(a_z), gate(a_r)
        return z, r, (h_prev if reset_after else r * h_prev)

    @cuda.jit(device=True)
    def candidate(x_h, m, z, r, h_prev):
        """-> hh = tanh(x_h + r m) (reset_after) or tanh(x_h + m), and h_t."""
        hh = math.tanh(x_h + r * m) if reset_after else math.tanh(x_h + m)
        return hh, z * h_prev + (1.0 - z) * hh

    @cuda.jit(device=True)
    def candidate_backward(dh, z, r, hh):
        """-> d x_h = dh (1 - z)(1 - hh^2) and d m (d x_h r with reset_after, else d x_h)."""
        d_xh = dh * (1.0 - z) * (1.0 - hh * hh)
        return d_xh, (d_xh * r if reset_after else d_xh)

    @cuda.jit(device=True)
    def gates_backward(dh, d_xh, z, r, hh, m, h_prev, via_m):
        """-> d a_z, d a_r and dh_{t-1} but for [d a_z, d a_r] @ U_zr^T; via_m = d m @ U_h^T."""
        # reset_after: dr = d x_h m, dh_{t-1} = dh z + d m @ U_h^T
        # else:        dr = d(r h_{t-1}) h_{t-1}, dh_{t-1} = dh z + d(r h_{t-1}) r, d(r h) = via_m
        dr = d_xh * m if reset_after else via_m * h_prev
        carry = dh * z + via_m if reset_after else dh * z + via_m * r
        return dh * (h_prev - hh) * slope(z), dr * slope(r), carry

    @cuda.jit
    def persistent_forward(projected, h0, recurrent_kernel, recurrent_bias, rows, hs, gates):
        # Shared: U (units, 3 units), h of the rows (the second half writes each element
        # after every thread has read the row), then the candidate's operand of the rows.
        steps = projected.shape[0]
        batch, units = h0.shape
        width = 3 * units
        shared = cuda.shared.array(capacity, dtype)
        first, count = block_elements(rows, batch, units)
        h_at = units * width
        operand_at = h_at + rows * units
        load_matrix(shared, recurrent_kernel)
        load_rows(shared, h_at, h0, first, count)
        cuda.syncthreads()
        for t in range(steps):
            for e in range(cuda.threadIdx.x, count, cuda.blockDim.x):
                r, j = e // units, e % units
                b, row = first + r, h_at + r * units
                z, r_gate, operand = gates_zr(
                    projected[t, b, j] + dot(shared, row, j, width, units) + recurrent_bias[j],
                    projected[t, b, units + j] + dot(shared, row, units + j, width, units)
                    + recurrent_bias[units + j],
                    shared[h_at + e])
                gates[t, b, j] = z
                gates[t, b, units + j] = r_gate
                shared[operand_at + e] = operand
            cuda.syncthreads()
            for e in range(cuda.threadIdx.x, count, cuda.blockDim.x):
                r, j = e // units, e % units
                b = first + r
                m = dot(shared, operand_at + r * units, 2 * units + j, width, units) + recurrent_bias[2 * units + j]
                hh, h = candidate(projected[t, b, 2 * units + j], m, gates[t, b, j], gates[t, b, units + j],
                                  shared[h_at + e])
                gates[t, b, 2 * units + j] = hh
                gates[t, b, 3 * units + j] = m
                hs[t, b, j] = h
                shared[h_at + e] = h
            cuda.syncthreads()

    @cuda.jit
    def persistent_backward(grad_hs, hs, gates, h0, kernel_t, rows, grad_projected, grad_m, grad_h0):
        # Shared: U^T (3 units, units); then per row [d a_z, d a_r] of step t+1 (zero
        # after the last step), d m, the carry dh_{t-1} but for the U_zr term, and dh.
        steps, batch, units = hs.shape
        shared = cuda.shared.array(capacity, dtype)
        first, count = block_elements(rows, batch, units)
        d_zr_at = 3 * units * units
        d_m_at = d_zr_at + rows * 2 * units
        carry_at = d_m_at + rows * units
        dh_at = carry_at + rows * units
        load_matrix(shared, kernel_t)
        fill(shared, d_zr_at, rows * 2 * units, 0.0)
        fill(shared, carry_at, count, 0.0)
        cuda.syncthreads()
        for t in range(steps - 1, -1, -1):
            for e in range(cuda.threadIdx.x, count, cuda.blockDim.x):
                r, j = e // units, e % units
                b = first + r
                # dh = grad_hs[t] + carry + [d a_z, d a_r]_{t+1} @ U_zr^T
                dh = grad_hs[t, b, j] + shared[carry_at + e] + dot(shared, d_zr_at + r * 2 * units, j, units,
                                                                      2 * units)
                d_xh, d_m = candidate_backward(dh, gates[t, b, j], gates[t, b, units + j],
                                               gates[t, b, 2 * units + j])
                grad_projected[t, b, 2 * units + j] = d_xh
                grad_m[t, b, j] = d_m
                shared[d_m_at + e] = d_m
                shared[dh_at + e] = dh
            cuda.syncthreads()
            for e in range(cuda.threadIdx.x, count, cuda.blockDim.x):
                r, j = e // units, e % units
                b = first + r
                via_m = dot(shared, d_m_at + r * units, 2 * units * units + j, units, units)
                d_az, d_ar, carry = gates_backward(
                    shared[dh_at + e], grad_projected[t, b, 2 * units + j], gates[t, b, j], gates[t, b, units + j],
                    gates[t, b, 2 * units + j], gates[t, b, 3 * units + j], hs[t - 1, b, j] if t > 0 else h0[b, j],
                    via_m)
                grad_projected[t, b, j] = d_az
                grad_projected[t, b, units + j] = d_ar
                shared[d_zr_at + r * 2 * units + j] = d_az
                shared[d_zr_at + r * 2 * units + units + j] = d_ar
                shared[carry_at + e] = carry
            cuda.syncthreads()
        for e in range(cuda.threadIdx.x, count, cuda.blockDim.x):
            r, j = e // units, e % units
            grad_h0[first + r, j] = shared[carry_at + e] + dot(shared, d_zr_at + r * 2 * units, j, units, 2 * units)

    @cuda.jit
    def step_gates(projected_t, recurrent_zr, recurrent_bias, h_prev, gates_t, operand):
        e = cuda.grid(1)
        batch, units = h_prev.shape
        if e < batch * units:
            b, j = e // units, e % units
            gates_t[b, j], gates_t[b, units + j], operand[b, j] = gates_zr(
                projected_t[b, j] + recurrent_zr[b, j] + recurrent_bias[j],
                projected_t[b, units + j] + recurrent_zr[b, units + j] + recurrent_bias[units + j],
                h_prev[b, j])

    @cuda.jit
    def step_candidate(projected_t, product, recurrent_bias, h_prev, gates_t, h):
        e = cuda.grid(1)
        batch, units = h_prev.shape
        if e < batch * units:
            b, j = e // units, e % units
            m = product[b, j] + recurrent_bias[2 * units + j]
            hh, h[b, j] = candidate(projected_t[b, 2 * units + j], m, gates_t[b, j], gates_t[b, units + j],
                                    h_prev[b, j])
            gates_t[b, 2 * units + j] = hh
            gates_t[b, 3 * units + j] = m

    @cuda.jit
    def step_candidate_backward(grad_h, carry, zr_product, gates_t, dh, grad_projected_t, grad_m_t):
        # dh = grad_hs[t] + carry + [d a_z, d a_r]_{t+1} @ U_zr^T, kept for the second half.
        e = cuda.grid(1)
        batch, units = dh.shape
        if e < batch * units:
            b, j = e // units, e % units
            dh[b, j] = grad_h[b, j] + carry[b, j] + zr_product[b, j]
            grad_projected_t[b, 2 * units + j], grad_m_t[b, j] = candidate_backward(
                dh[b, j], gates_t[b, j], gates_t[b, units + j], gates_t[b, 2 * units + j])

    @cuda.jit
    def step_gates_backward(dh, via_m, gates_t, h_prev, grad_projected_t, carry):
        e = cuda.grid(1)
        batch, units = dh.shape
        if e < batch * units:
            b, j = e // units, e % units
            grad_projected_t[b, j], grad_projected_t[b, units + j], carry[b, j] = gates_backward(
                dh[b, j], grad_projected_t[b, 2 * units + j], gates_t[b, j], gates_t[b, units + j],
                gates_t[b, 2 * units + j], gates_t[b, 3 * units + j], h_prev[b, j], via_m[b, j])

    return SimpleNamespace(persistent_forward=persistent_forward, persistent_backward=persistent_backward,
                           step_gates=step_gates, step_candidate=step_candidate,
                           step_candidate_backward=step_candidate_backward, step_gates_backward=step_gates_backward)


def gru_forward(projected, h0, recurrent_kernel, recurrent_bias, reset_after, recurrent_activation="sigmoid"):
    """Returns hs (time, batch, units) and gates (time, batch, 4*units): z, r, hh, m."""
    xp = get_array_module(projected)
    projected, h0, recurrent_kernel, recurrent_bias = contiguous(projected, h0, recurrent_kernel, recurrent_bias)
    steps, (batch, units), dtype = projected.shape[0], h0.shape, projected.dtype
    hs = xp.empty((steps, batch, units), dtype=dtype)
    gates = xp.empty((steps, batch, 4 * units), dtype=dtype)
    # U, and per row h and the candidate's operand.
    rows = persistent.persistent_rows(batch, units, 3 * units * units, 2 * units, dtype)
    run = _gru_kernels(recurrent_activation, bool(reset_after), dtype, persistent.capacity(dtype))
    if rows:
        persistent.launch_persistent(run.persistent_forward, batch, units, rows, projected, h0, recurrent_kernel,
                           recurrent_bias, rows, hs, gates)
        return hs, gates
    u_zr = xp.ascontiguousarray(recurrent_kernel[:, :2 * units])
    u_h = xp.ascontiguousarray(recurrent_kernel[:, 2 * units:])
    recurrent_zr = xp.empty((batch, 2 * units), dtype=dtype)
    operand = xp.empty((batch, units), dtype=dtype)
    product = xp.empty((batch, units), dtype=dtype)
    h = h0
    for t in range(steps):
        xp.matmul(h, u_zr, out=recurrent_zr)
        launch.launch(run.step_gates, batch * units, projected[t], recurrent_zr, recurrent_bias, h, gates[t],
                      operand)
        xp.matmul(operand, u_h, out=product)
        launch.launch(run.step_candidate, batch * units, projected[t], product, recurrent_bias, h, gates[t], hs[t])
        h = hs[t]
    return hs, gates


def gru_backward(grad_hs, hs, gates, h0, recurrent_kernel, reset_after, recurrent_activation="sigmoid"):
    """Returns grad_projected (T, B, 3*units), grad_h0, grad_recurrent_kernel and
    grad_recurrent_bias (3*units,)."""
    xp = get_array_module(grad_hs)
    grad_hs, hs, gates, h0 = contiguous(grad_hs, hs, gates, h0)
    (steps, batch, units), dtype = hs.shape, hs.dtype
    kernel_t = xp.ascontiguousarray(recurrent_kernel.T)
    grad_projected = xp.empty((steps, batch, 3 * units), dtype=dtype)
    grad_m = xp.empty((steps, batch, units), dtype=dtype)  # d loss / d m, per step
    # U^T, and per row d a_z, d a_r, d m, the carry and dh.
    rows = persistent.persistent_rows(batch, units, 3 * units * units, 5 * units, dtype)
    run = _gru_kernels(recurrent_activation, bool(reset_after), dtype, persistent.capacity(dtype))
    if rows:
        grad_h0 = xp.empty((batch, units), dtype=dtype)
        persistent.launch_persistent(run.persistent_backward, batch, units, rows, grad_hs, hs, gates, h0, kernel_t, rows,
                           grad_projected, grad_m, grad_h0)
    else:
        u_zr_t, u_h_t = kernel_t[:2 * units], kernel_t[2 * units:]
        carry = xp.zeros((batch, units), dtype=dtype)
        zr_product = xp.zeros((batch, units), dtype=dtype)
        dh = xp.empty((batch, units), dtype=dtype)
        via_m = xp.empty((batch, units), dtype=dtype)
        for t in range(steps - 1, -1, -1):
            h_prev = hs[t - 1] if t > 0 else h0
            launch.launch(run.step_candidate_backward, batch * units, grad_hs[t], carry, zr_product, gates[t], dh,
                          grad_projected[t], grad_m[t])
            xp.matmul(grad_m[t], u_h_t, out=via_m)
            launch.launch(run.step_gates_backward, batch * units, dh, via_m, gates[t], h_prev, grad_projected[t],
                          carry)
            xp.matmul(grad_projected[t, :, :2 * units], u_zr_t, out=zr_product)
        grad_h0 = carry + zr_product
    return (grad_projected, grad_h0) + gru_weight_gradients(grad_projected, grad_m, gates, previous_states(hs, h0),
                                                            reset_after)
