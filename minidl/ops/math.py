"""Elementwise arithmetic and matrix products.

Every binary op broadcasts as NumPy does; the graph walk sums each gradient back to its
input's shape (autograd.graph.unbroadcast), so the backwards here ignore broadcasting.
"""
import numpy as np

from minidl.autograd import Function, Tensor, as_tensor
from minidl.backend import get_array_module
from minidl.kernels import get_kernel


class Add(Function):
    """d(a+b)/da = 1, d(a+b)/db = 1."""

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    """d(a-b)/da = 1, d(a-b)/db = -1."""

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad):
        return grad, -grad


class Mul(Function):
    """d(ab)/da = b, d(ab)/db = a."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save(a if ctx.needs_input_grad[1] else None, b if ctx.needs_input_grad[0] else None)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        return (grad * b if b is not None else None), (grad * a if a is not None else None)


class Div(Function):
    """d(a/b)/da = 1/b, d(a/b)/db = -a/b^2."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        grad_a = grad / b
        grad_b = -grad_a * a / b if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Neg(Function):
    """d(-a)/da = -1."""

    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad):
        return (-grad,)


class Power(Function):
    """d(a^p)/da = p a^(p-1); d(a^p)/dp = a^p log(a) (only needed when p requires grad)."""

    @staticmethod
    def forward(ctx, a, p):
        out = a**p
        ctx.save(a, p, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, p, out = ctx.saved
        grad_a = grad * p * a ** (p - 1) if ctx.needs_input_grad[0] else None
        grad_p = grad * out * np.log(a) if ctx.needs_input_grad[1] else None
        return grad_a, grad_p


class Exp(Function):
    """d(e^a)/da = e^a."""

    @staticmethod
    def forward(ctx, a):
        out = np.exp(a)
        ctx.save(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return (grad * out,)


class Log(Function):
    """d(log a)/da = 1/a."""

    @staticmethod
    def forward(ctx, a):
        ctx.save(a)
        return np.log(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        return (grad / a,)


class Abs(Function):
    """d|a|/da = sign(a) (0 at 0)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save(a)
        return np.abs(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        return (grad * np.sign(a),)


class Maximum(Function):
    """Elementwise max; the gradient goes to the larger input (to `a` on ties)."""

    @staticmethod
    def forward(ctx, a, b):
        a_wins = a >= b
        ctx.save(a_wins)
        return get_array_module(a, b).where(a_wins, a, b)

    @staticmethod
    def backward(ctx, grad):
        (a_wins,) = ctx.saved
        return grad * a_wins, grad * ~a_wins


class Cast(Function):
    """Change of floating dtype; the gradient is cast back by the graph walk."""

    @staticmethod
    def forward(ctx, a, dtype):
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return (grad,)


def _swap_last(array):
    return array.swapaxes(-1, -2)


def _product(a, b):
    """a @ b; a product of two matrices goes through the kernel, which splits a large
    one across the CPU's threads (kernels/numba_cpu/math.py)."""
    if a.ndim == 2 and b.ndim == 2:
        return get_kernel("math", "matmul", a, b)(a, b)
    return a @ b


class MatMul(Function):
    """a @ b with NumPy's rules (1-D operands promoted, batch axes broadcast).
    grad_a = grad @ b^T, grad_b = a^T @ grad (on the promoted 2-D views)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save(a, b)
        return _product(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        if a.ndim == 1 and b.ndim == 1:  # dot product: a scalar output
            return grad * b, grad * a
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if a.ndim == 1:
            grad = grad[..., None, :]
        if b.ndim == 1:
            grad = grad[..., None]
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = _product(grad, _swap_last(b2))
            if a.ndim == 1:
                grad_a = grad_a[..., 0, :]
        if ctx.needs_input_grad[1]:
            grad_b = _product(_swap_last(a2), grad)
            if b.ndim == 1:
                grad_b = grad_b[..., 0]
        return grad_a, grad_b


def add(a, b):
    return Add.apply(a, b)


def sub(a, b):
    return Sub.apply(a, b)


def mul(a, b):
    return Mul.apply(a, b)


def div(a, b):
    return Div.apply(a, b)


def neg(a):
    return Neg.apply(a)


def power(a, p):
    return Power.apply(a, p)


def sqrt(a):
    """a ** 0.5, composed."""
    return Power.apply(a, 0.5)


def exp(a):
    return Exp.apply(a)


def log(a):
    return Log.apply(a)


def abs(a):  # noqa: A001 - the name users expect
    return Abs.apply(a)


def maximum(a, b):
    return Maximum.apply(a, b)


def cast(a, dtype):
    """`a` as `dtype`: differentiable between floating dtypes, a constant otherwise."""
    a = as_tensor(a)
    if np.issubdtype(np.dtype(dtype), np.floating):
        return Cast.apply(a, dtype=np.dtype(dtype))
    return Tensor(a.data.astype(dtype))


def matmul(a, b):
    """Matrix product with NumPy's rules; a clear error when inner sizes differ.

    A (2, 4) matrix times a 4-vector: each entry is a row's dot product with the vector,
    3*1 + 4*2 + 5*3 + 6*4 = 50 and 4*1 + 5*2 + 6*3 + 7*4 = 60.

    >>> import minidl
    >>> a = minidl.tensor([[3.0, 4.0, 5.0, 6.0], [4.0, 5.0, 6.0, 7.0]])
    >>> v = minidl.tensor([1.0, 2.0, 3.0, 4.0])
    >>> matmul(a, v).tolist()
    [50.0, 60.0]
    >>> matmul(a, a)
    Traceback (most recent call last):
    ValueError: matmul: shapes (2, 4) and (2, 4) do not fit: the last axis of the first (4) must equal the second-to-last axis of the second (2)
    """
    a = as_tensor(a)
    b = as_tensor(b, like=a)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: operands must have at least one dimension; use * for scalars")
    inner_a = a.shape[-1]
    inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if inner_a != inner_b:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} do not fit: "
            f"the last axis of the first ({inner_a}) must equal the "
            f"{'only' if b.ndim == 1 else 'second-to-last'} axis of the second ({inner_b})"
        )
    return MatMul.apply(a, b)


def linear(x, kernel, bias=None):
    """x @ kernel + bias: the Dense layer's product. x (..., in), kernel (in, out), bias (out,)."""
    out = matmul(x, kernel)
    return out + bias if bias is not None else out
