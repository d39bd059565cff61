"""How every numba_cuda kernel is launched: one thread per output element, blocks of
THREADS_PER_BLOCK threads, on the stream the arrays belong to.

On a GPU the arrays are CuPy arrays, passed to the kernel as they are (Numba reads their
`__cuda_array_interface__`, so nothing is copied), and the kernel is queued on CuPy's
current stream: a launch is ordered after the CuPy products and reductions queued before
it, and before those queued after, exactly as if CuPy had launched it.

Under Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1, the test target
MINIDL_KERNELS=cudasim) the arrays are NumPy arrays and each CUDA thread runs as a
Python thread, block after block; the simulator has no streams, so none is passed.
"""
import sys

from numba import cuda

from minidl.backend import get_array_module, is_cupy_array

#: Threads per block: a multiple of the warp (32), small enough that a block fits on
#: any GPU, large enough to hide memory latency in these elementwise-shaped kernels.
THREADS_PER_BLOCK = 128


def simulator_active():
    """True when numba.cuda was imported as Numba's CUDA simulator."""
    return "numba.cuda.simulator_init" in sys.modules


def blocks_for(size):
    """Blocks that give `size` threads at least one each (the last block's surplus
    threads return at once: each kernel checks its index against the size)."""
    return (size + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK


def stream_for(kernel, arrays):
    """The stream to launch `kernel` on with `arrays`: CuPy's current stream for CuPy
    arrays; None (launch without a stream argument) for NumPy arrays in the simulator.
    For a launch that sizes its own grid (a persistent kernel); `launch` uses it too."""
    if not any(is_cupy_array(a) for a in arrays):
        return None
    if simulator_active():
        name = getattr(kernel, "__name__", "a numba_cuda kernel")
        raise RuntimeError(f"{name} met CuPy arrays while NUMBA_ENABLE_CUDASIM=1: the CUDA simulator runs on "
                           "NumPy arrays only; unset NUMBA_ENABLE_CUDASIM (or set it to 0) to use the GPU")
    import cupy

    return cuda.external_stream(cupy.cuda.get_current_stream().ptr)


def launch(kernel, size, *args):
    """kernel(*args) on `size` threads, one per element of the work (none when size is 0)."""
    if size == 0:
        return
    stream = stream_for(kernel, args)
    if stream is None:
        kernel[blocks_for(size), THREADS_PER_BLOCK](*args)
    else:
        kernel[blocks_for(size), THREADS_PER_BLOCK, stream](*args)


def flat(array):
    """A 1-D contiguous view of `array` (a contiguous copy first where it is not)."""
    return get_array_module(array).ascontiguousarray(array).reshape(-1)


def flat_in_place(array, what):
    """The 1-D view of an array a kernel updates in place: it must be contiguous, or
    the update would land in a copy."""
    if not array.flags.c_contiguous:
        raise ValueError(f"{what}: the array updated in place must be C-contiguous")
    return array.reshape(-1)
