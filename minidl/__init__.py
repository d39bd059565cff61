"""minidl: a small deep-learning engine on NumPy (CuPy on a GPU), with Numba kernels."""
from minidl import data, functional, io, models, nn, optim, train
from minidl.autograd import (
    GradcheckError,
    Tensor,
    gradcheck,
    no_grad,
    set_grad_enabled,
    tensor,
)
from minidl.backend import (
    current_device,
    default_dtype,
    device,
    manual_seed,
    set_default_dtype,
)
from minidl.kernels import set_num_threads
from minidl.kernels.parallelism import get_num_threads
from minidl.models import Sequential
from minidl.train import Model
from minidl.version import __version__

__all__ = [
    "GradcheckError", "Model", "Sequential", "Tensor", "current_device", "data", "default_dtype", "device", "functional",
    "get_num_threads", "gradcheck", "io", "manual_seed", "models", "nn", "no_grad", "optim", "set_default_dtype",
    "set_grad_enabled", "set_num_threads", "tensor", "train", "__version__",
]
