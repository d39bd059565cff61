"""Activations by their Keras names, for layers' `activation=` argument."""
from minidl.ops import activation as ops

_ACTIVATIONS = {
    "relu": ops.relu,
    "elu": ops.elu,
    "sigmoid": ops.sigmoid,
    "hard_sigmoid": ops.hard_sigmoid,
    "tanh": ops.tanh,
    "softmax": ops.softmax,
    "log_softmax": ops.log_softmax,
    "leaky_relu": ops.leaky_relu,
}


def identity(x):
    return x


def get(name):
    """The function for an activation name; None or "linear" give the identity."""
    if name is None or name == "linear":
        return identity
    if callable(name):
        return name
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}: choose one of linear, {', '.join(sorted(_ACTIVATIONS))}") from None
