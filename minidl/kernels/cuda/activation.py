"""CuPy twins of kernels/reference/activation.py: each forward and backward is one fused
elementwise pass (no boolean temporaries, no `where` over two evaluated branches).

Imported only by the dispatcher for CuPy arrays. CuPy compiles an ElementwiseKernel on
its first call (and caches the binary), so importing this module touches no GPU. Each
kernel is called with the reference twin's arguments, in the same order.
"""
import cupy

# relu_forward(x): max(x, 0). `x != x` lets NaN through as np.maximum does (fmax drops it).
relu_forward = cupy.ElementwiseKernel(
    "T x", "T y",
    "y = (x > (T)0 || x != x) ? x : (T)0",
    "minidl_relu_forward",
)

# relu_backward(grad, x): d relu(x)/dx = 1 where x > 0.
relu_backward = cupy.ElementwiseKernel(
    "T grad, T x", "T dx",
    "dx = x > (T)0 ? grad : (T)0",
    "minidl_relu_backward",
)

# elu_forward(x, alpha): x where x > 0, alpha (e^x - 1) elsewhere; expm1 keeps the
# precision near 0, and only the branch taken is evaluated, so e^x never overflows.
elu_forward = cupy.ElementwiseKernel(
    "T x, float64 alpha", "T y",
    "y = x > (T)0 ? x : (T)(alpha * expm1((double)x))",
    "minidl_elu_forward",
)

# elu_backward(grad, x, out, alpha): d elu(x)/dx = 1 where x > 0, elu(x) + alpha elsewhere.
elu_backward = cupy.ElementwiseKernel(
    "T grad, T x, T out, float64 alpha", "T dx",
    "dx = x > (T)0 ? grad : (T)(grad * (out + (T)alpha))",
    "minidl_elu_backward",
)
