"""The persistent recurrent kernels' building blocks (see recurrent.py): where the form
is chosen, the launch of a block per slice of the batch, the shared-memory helpers the
kernels' threads stride with, and the gate functions as device functions."""
import math

import numpy as np
from numba import cuda

from minidl.backend import get_array_module
from minidl.kernels.numba_cuda import launch
from minidl.kernels.reference.recurrent import (
    gate_activation,
)

#: Static shared memory one block may use (CUDA's limit without opting in: 48 KiB).
#: The persistent form is chosen where U and one row's states fit; tests lower it.
SHARED_BYTES = 48 * 1024

#: The most threads a persistent block gets; it owns about PERSISTENT_THREADS // units
#: rows of the batch. (The per-step kernels use launch.py's blocks.)
PERSISTENT_THREADS = 128


def capacity(dtype):
    """Elements of `dtype` in the shared array of a persistent block."""
    return SHARED_BYTES // np.dtype(dtype).itemsize


def persistent_rows(batch, units, fixed, per_row, dtype):
    """The one place that picks the form: the batch rows each block of the persistent
    kernel owns, or 0 for the per-step form, where `fixed` elements (U) and `per_row`
    elements (one row's states) do not fit in SHARED_BYTES."""
    room = capacity(dtype) - fixed
    if room < per_row:
        return 0
    return min(batch, room // per_row, max(1, PERSISTENT_THREADS // units))


def contiguous(*arrays):
    """C-contiguous arrays for the kernels (the simulator takes no other, and on a GPU a
    contiguous array types as layout C, whose indexing needs no strides)."""
    xp = get_array_module(*arrays)
    return [xp.ascontiguousarray(a) for a in arrays]


def launch_persistent(kernel, batch, units, rows, *args):
    """One block per `rows` rows of the batch, its threads striding over the block's
    (row, unit) elements, on the arrays' stream (launch.launch gives one thread per
    element, which a persistent kernel cannot use)."""
    blocks, threads = (batch + rows - 1) // rows, min(rows * units, PERSISTENT_THREADS)
    stream = launch.stream_for(kernel, args)
    if stream is None:
        kernel[blocks, threads](*args)
    else:
        kernel[blocks, threads, stream](*args)


# ------------------------------------------------------------------- device functions
@cuda.jit(device=True)
def sigmoid(x):
    # 1 / (1 + e^-|x|), mirrored for x < 0, as the reference: e^-|x| never overflows.
    e = math.exp(-abs(x))
    return 1.0 / (1.0 + e) if x >= 0 else e / (1.0 + e)


@cuda.jit(device=True)
def sigmoid_slope(s):
    return s * (1.0 - s)


@cuda.jit(device=True)
def hard_sigmoid(x):
    # Keras 2's hard_sigmoid, clip(0.2 x + 0.5, 0, 1).
    return min(max(0.2 * x + 0.5, 0.0), 1.0)


@cuda.jit(device=True)
def hard_sigmoid_slope(s):
    return 0.2 if 0.0 < s < 1.0 else 0.0


#: recurrent activation -> (the gate, its derivative from the gate's value).
GATES = {"sigmoid": (sigmoid, sigmoid_slope), "hard_sigmoid": (hard_sigmoid, hard_sigmoid_slope)}


def gate_functions(recurrent_activation):
    gate_activation(recurrent_activation)  # an unknown name is a ValueError
    return GATES[recurrent_activation]


@cuda.jit(device=True)
def dot(shared, row_at, column_at, column_step, n):
    """sum_k shared[row_at + k] * shared[column_at + k * column_step]: a state row (the
    same words for the threads of a row, a broadcast) times a column of the matrix."""
    # Started from the first term, so the sum keeps the array's dtype.
    total = shared[row_at] * shared[column_at]
    for k in range(1, n):
        total += shared[row_at + k] * shared[column_at + k * column_step]
    return total


@cuda.jit(device=True)
def load_matrix(shared, matrix):
    """shared[:rows * columns] = matrix, row-major, the block's threads striding."""
    columns = matrix.shape[1]
    for k in range(cuda.threadIdx.x, matrix.shape[0] * columns, cuda.blockDim.x):
        shared[k] = matrix[k // columns, k % columns]


@cuda.jit(device=True)
def load_rows(shared, at, source, first, count):
    """shared[at:at + count] = the block's rows of source (batch, units), flat."""
    units = source.shape[1]
    for e in range(cuda.threadIdx.x, count, cuda.blockDim.x):
        shared[at + e] = source[first + e // units, e % units]


@cuda.jit(device=True)
def fill(shared, at, count, value):
    for e in range(cuda.threadIdx.x, count, cuda.blockDim.x):
        shared[at + e] = value


@cuda.jit(device=True)
def block_elements(rows, batch, units):
    """(first batch row of this block, its number of (row, unit) elements)."""
    first = cuda.blockIdx.x * rows
    return first, min(rows, batch - first) * units
