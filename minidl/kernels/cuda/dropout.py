"""CuPy twins of kernels/reference/dropout.py: the mask is drawn, applied and stored in
one elementwise pass, with no random-number generator state on the device.

Element i's uniform number is the i-th output of SplitMix64 (Steele, Lea & Flood 2014)
started from `seed`: a counter-based draw, so the mask depends only on the seed and the
element's position, never on how CUDA schedules the threads. The same seed gives the
same mask on every run and every GPU. The Numba twin draws the same stream, so a seed
gives the same mask on the CPU (MINIDL_KERNELS=numba) and the GPU; the NumPy
reference's generator differs, so its masks agree with these in distribution only.
"""
import cupy

# dropout_forward(x, rate, seed) -> (y, keep): keep = u_i >= rate, y = x * keep / (1 - rate).
# The scale is rounded to x's dtype before the product and a dropped element is x * 0
# (NaN stays NaN), both as in the Numba twin, so the two targets agree bit for bit.
dropout_forward = cupy.ElementwiseKernel(
    "T x, float64 rate, uint64 seed", "T y, bool keep",
    """
    unsigned long long z = seed + (unsigned long long)(i + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    const double u = (double)(z >> 11) * (1.0 / 9007199254740992.0);  // 53 bits in [0, 1)
    keep = u >= rate;
    y = keep ? (T)(x * (T)(1.0 / (1.0 - rate))) : (T)(x * (T)0);
    """,
    "minidl_dropout_forward",
)

# dropout_backward(grad, keep, rate): dy/dx = keep / (1 - rate).
dropout_backward = cupy.ElementwiseKernel(
    "T grad, bool keep, float64 rate", "T dx",
    "dx = keep ? (T)(grad * (T)(1.0 / (1.0 - rate))) : (T)(grad * (T)0)",
    "minidl_dropout_backward",
)
