"""Weight initialisers, by their Keras names, drawing from the seeded generator.

Each takes a shape and returns a NumPy array of the default dtype; `Module.add_weight`
moves it to the current device. Fans follow Keras: for a kernel of shape
(*receptive_field, fan_in_channels, fan_out_channels), fan_in = prod(receptive) * c_in and
fan_out = prod(receptive) * c_out.
"""
import numpy as np

from minidl import backend


def compute_fans(shape):
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def zeros(shape):
    return np.zeros(shape)


def ones(shape):
    return np.ones(shape)


def glorot_uniform(shape):
    """U(-l, l) with l = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010); Keras' default."""
    fan_in, fan_out = compute_fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return backend.numpy_generator().uniform(-limit, limit, size=shape)


def glorot_normal(shape):
    """Truncated N(0, 2 / (fan_in + fan_out)), redrawn beyond two standard deviations."""
    fan_in, fan_out = compute_fans(shape)
    return _truncated_normal(shape, np.sqrt(2.0 / (fan_in + fan_out)))


def he_uniform(shape):
    """U(-l, l) with l = sqrt(6 / fan_in) (He et al. 2015), for ReLU layers."""
    fan_in, _ = compute_fans(shape)
    limit = np.sqrt(6.0 / fan_in)
    return backend.numpy_generator().uniform(-limit, limit, size=shape)


def he_normal(shape):
    fan_in, _ = compute_fans(shape)
    return _truncated_normal(shape, np.sqrt(2.0 / fan_in))


def random_uniform(shape, minval=-0.05, maxval=0.05):
    """U(-0.05, 0.05): Keras' default for Embedding."""
    return backend.numpy_generator().uniform(minval, maxval, size=shape)


def orthogonal(shape, gain=1.0):
    """A (semi-)orthogonal matrix from the QR decomposition of a Gaussian one (Saxe et
    al. 2014); Keras' default for recurrent kernels. Signs fixed by diag(R)."""
    rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    cols = shape[-1]
    flat = backend.numpy_generator().standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return gain * q[:rows, :cols].reshape(shape)


def _truncated_normal(shape, stddev):
    rng = backend.numpy_generator()
    values = rng.standard_normal(size=shape)
    outside = np.abs(values) > 2
    while outside.any():
        values[outside] = rng.standard_normal(size=int(outside.sum()))
        outside = np.abs(values) > 2
    return values * stddev / 0.87962566103423978  # std of N(0,1) truncated at +-2


_INITIALIZERS = {
    "zeros": zeros,
    "ones": ones,
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "uniform": random_uniform,
    "random_uniform": random_uniform,
    "orthogonal": orthogonal,
}


def get(initializer):
    """An initialiser from its Keras name, or a callable shape -> array as it is."""
    if callable(initializer):
        return initializer
    try:
        return _INITIALIZERS[initializer]
    except KeyError:
        raise ValueError(f"unknown initializer {initializer!r}: choose one of {', '.join(sorted(_INITIALIZERS))}") from None
