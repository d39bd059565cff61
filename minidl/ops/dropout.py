"""Inverted dropout (Srivastava et al. 2014): identity when not training."""
from minidl import backend
from minidl.autograd import Function, as_tensor
from minidl.kernels import get_kernel


class Dropout(Function):
    """y = x * keep / (1 - rate); dy/dx = keep / (1 - rate)."""

    @staticmethod
    def forward(ctx, x, rate, seed):
        out, keep = get_kernel("dropout", "dropout_forward", x)(x, rate, seed)
        ctx.save(keep)
        ctx.rate = rate
        return out

    @staticmethod
    def backward(ctx, grad):
        (keep,) = ctx.saved
        return (get_kernel("dropout", "dropout_backward", grad)(grad, keep, ctx.rate),)


def dropout(x, rate, training=True, seed=None):
    """Zero each element with probability `rate` and scale the rest by 1 / (1 - rate).

    The mask comes from a generator seeded by `seed`, or by the next number of the
    seeded stream (`minidl.manual_seed`), so runs repeat exactly.
    """
    x = as_tensor(x)
    if not 0 <= rate < 1:
        raise ValueError(f"dropout: rate must be in [0, 1), got {rate}")
    if not training or rate == 0:
        return x
    seed = backend.next_seed() if seed is None else int(seed)
    return Dropout.apply(x, rate=float(rate), seed=seed)
