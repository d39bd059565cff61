"""Tensor: an array (NumPy or CuPy) plus what reverse-mode autograd needs.

A Tensor made by the user is a leaf; one made by an op remembers its node (the op, its
saved context and its inputs) while grad mode is on and some input requires grad.
`backward()` walks those nodes in reverse and accumulates into the leaves' `.grad`.
"""
import numbers

import numpy as np

from minidl import backend
from minidl.autograd.graph import run_backward


class Tensor:
    # Makes `ndarray <op> Tensor` call the Tensor's reflected operator.
    __array_priority__ = 1000

    def __init__(self, data, requires_grad=False):
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"only floating tensors can require grad, got dtype {data.dtype}")
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._node = None

    # ------------------------------------------------------------------ properties
    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return int(self.data.size)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return backend.device_of(self.data)

    @property
    def is_leaf(self):
        return self._node is None

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        device = ", device='cuda'" if self.device == "cuda" else ""
        body = np.array2string(backend.to_numpy(self.data), prefix="tensor(", precision=4)
        return f"tensor({body}, dtype={self.dtype.name}{device}{grad})"

    # ------------------------------------------------------------------- autograd
    def backward(self, grad=None):
        """Accumulate d(self)/d(leaf) times `grad` into every leaf's `.grad`.

        `grad` defaults to 1 for a one-element tensor; any other tensor needs it given.

        >>> import minidl
        >>> x = minidl.tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> (x * x).sum().backward()          # d(sum x^2)/dx = 2x
        >>> x.grad.tolist()
        [2.0, 4.0, 6.0]
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad (no input required grad, or it was made under no_grad)")
        xp = backend.get_array_module(self.data)
        if grad is None:
            if self.size != 1:
                raise ValueError(
                    f"backward() on a tensor of shape {self.shape} needs a gradient of that shape; "
                    "only a one-element (scalar) tensor gets the implicit gradient 1"
                )
            grad = xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else xp.asarray(grad, dtype=self.dtype)
            if tuple(grad.shape) != self.shape:
                raise ValueError(f"backward(): gradient of shape {tuple(grad.shape)} for a tensor of shape {self.shape}")
        run_backward(self, grad)

    def _accumulate_grad(self, grad):
        if self.grad is None:
            self.grad = grad.copy()
        else:
            self.grad += grad

    def zero_grad(self):
        self.grad = None

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor(self.data, requires_grad=False)

    def requires_grad_(self, flag=True):
        if flag and not np.issubdtype(self.dtype, np.floating):
            raise TypeError(f"only floating tensors can require grad, got dtype {self.dtype}")
        self.requires_grad = bool(flag)
        return self

    # ---------------------------------------------------------------- conversion
    def numpy(self):
        """The data as a NumPy array (copied from the GPU when on CUDA)."""
        return backend.to_numpy(self.data)

    def item(self):
        if self.size != 1:
            raise ValueError(f"item() needs a one-element tensor, got shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def astype(self, dtype):
        """A copy with another dtype (cut from the graph when the dtype is not floating)."""
        from minidl.ops.math import cast

        return cast(self, dtype)

    def to(self, device):
        """This tensor on `device` ('cpu' or 'cuda'); a leaf stays a leaf, with its flag."""
        data = backend.to_device(self.data, device)
        if data is self.data:
            return self
        return Tensor(data, requires_grad=self.requires_grad)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    # ---------------------------------------------------------------- arithmetic
    def __add__(self, other):
        from minidl.ops.math import add
        return add(self, other)

    def __radd__(self, other):
        from minidl.ops.math import add
        return add(other, self)

    def __sub__(self, other):
        from minidl.ops.math import sub
        return sub(self, other)

    def __rsub__(self, other):
        from minidl.ops.math import sub
        return sub(other, self)

    def __mul__(self, other):
        from minidl.ops.math import mul
        return mul(self, other)

    def __rmul__(self, other):
        from minidl.ops.math import mul
        return mul(other, self)

    def __truediv__(self, other):
        from minidl.ops.math import div
        return div(self, other)

    def __rtruediv__(self, other):
        from minidl.ops.math import div
        return div(other, self)

    def __pow__(self, exponent):
        from minidl.ops.math import power
        return power(self, exponent)

    def __rpow__(self, base):
        from minidl.ops.math import power
        return power(base, self)

    def __matmul__(self, other):
        from minidl.ops.math import matmul
        return matmul(self, other)

    def __rmatmul__(self, other):
        from minidl.ops.math import matmul
        return matmul(other, self)

    def __neg__(self):
        from minidl.ops.math import neg
        return neg(self)

    def __pos__(self):
        return self

    # Comparisons give boolean tensors and build no graph.
    def _compare(self, other, op):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor(op(self.data, other))

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b)

    def __eq__(self, other):
        return self._compare(other, lambda a, b: a == b)

    def __ne__(self, other):
        return self._compare(other, lambda a, b: a != b)

    __hash__ = object.__hash__

    def __bool__(self):
        if self.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.item())

    # ------------------------------------------------------------- shape & index
    def __getitem__(self, index):
        from minidl.ops.shape import getitem
        return getitem(self, index)

    def reshape(self, *shape):
        from minidl.ops.shape import reshape
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return reshape(self, shape)

    def transpose(self, *axes):
        from minidl.ops.shape import transpose
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return transpose(self, axes or None)

    @property
    def T(self):
        return self.transpose()

    def flatten(self, start_axis=1):
        from minidl.ops.shape import flatten
        return flatten(self, start_axis)

    # ------------------------------------------------------------------ reductions
    def sum(self, axis=None, keepdims=False):
        from minidl.ops.reduce import sum as sum_
        return sum_(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        from minidl.ops.reduce import mean
        return mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        from minidl.ops.reduce import max as max_
        return max_(self, axis=axis, keepdims=keepdims)

    # ----------------------------------------------------------------- elementwise
    def exp(self):
        from minidl.ops.math import exp
        return exp(self)

    def log(self):
        from minidl.ops.math import log
        return log(self)

    def relu(self):
        from minidl.ops.activation import relu
        return relu(self)

    def sigmoid(self):
        from minidl.ops.activation import sigmoid
        return sigmoid(self)

    def tanh(self):
        from minidl.ops.activation import tanh
        return tanh(self)


def tensor(data, requires_grad=False, dtype=None, device=None):
    """Make a leaf Tensor from a list, scalar, NumPy/CuPy array or Tensor.

    As in PyTorch, arrays keep their dtype while Python floats take the default dtype
    (float32 unless changed) and Python integers stay integers (embedding indices);
    `dtype` overrides both. `device` defaults to the array's own, else the current one.

    >>> import minidl
    >>> minidl.tensor([[1.0, 2.0], [3.0, 4.0]])
    tensor([[1. 2.]
            [3. 4.]], dtype=float32)
    >>> minidl.tensor([1, 2], dtype="int32").dtype.name
    'int32'
    """
    if isinstance(data, Tensor):
        data = data.data
    from_python = not (isinstance(data, np.ndarray) or backend.is_cupy_array(data))
    if device is None:
        device = "cuda" if backend.is_cupy_array(data) else backend.current_device()
    array = backend.to_device(np.asarray(data) if from_python else data, device)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"tensor(): cannot make a tensor from data of dtype {array.dtype}")
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    elif from_python and array.dtype == np.float64:
        array = array.astype(backend.default_dtype())
    return Tensor(array, requires_grad=requires_grad)


def as_tensor(value, like=None):
    """`value` as a Tensor: Tensors pass through; scalars and arrays become constants
    with the dtype and device of `like` when it is a floating Tensor."""
    if isinstance(value, Tensor):
        return value
    if like is not None:
        xp = backend.get_array_module(like.data)
        if isinstance(value, numbers.Number) or np.isscalar(value):
            dtype = like.dtype if np.issubdtype(like.dtype, np.floating) else None
            return Tensor(xp.asarray(value, dtype=dtype))
        if backend.device_of(value) != like.device:
            raise ValueError(
                f"an array on {backend.device_of(value)} was combined with a tensor on {like.device}; "
                "move it with .to(device) first"
            )
        return Tensor(xp.asarray(value))
    return tensor(value)
