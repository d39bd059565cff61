"""Reverse-mode automatic differentiation: Tensor, Function, the graph walk, gradcheck."""
from minidl.autograd.function import Context, Function
from minidl.autograd.gradcheck import GradcheckError, gradcheck
from minidl.autograd.mode import is_grad_enabled, no_grad, set_grad_enabled
from minidl.autograd.tensor import Tensor, as_tensor, tensor

__all__ = [
    "Context", "Function", "GradcheckError", "Tensor", "as_tensor", "gradcheck",
    "is_grad_enabled", "no_grad", "set_grad_enabled", "tensor",
]
