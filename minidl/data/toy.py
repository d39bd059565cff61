"""Two-dimensional toy classification sets, generated here and seeded, for the MLP
playground (in the spirit of the TensorFlow Playground) and for fast tests.

Every generator returns (x, y): x float32 (n, 2), roughly within [-1, 1] on each axis,
and y int64 (n,) class labels 0..k-1, the classes as equal in size as n allows.
`noise` is the standard deviation of Gaussian jitter added to the points (in the units
of x); the same `seed` gives the same points.

    spiral   k interleaved arms (default 2): the classic set a linear model cannot split
    circles  a disc (label 1) inside a ring (label 0)
    xor      the four quadrants, label 1 where the signs of the two axes differ
    moons    two interleaving half circles (scikit-learn's make_moons, rescaled)
"""
import numpy as np


def _class_sizes(n, classes):
    """n points shared out among `classes`, the first classes one larger when n does not divide."""
    if int(n) != n or n < classes:
        raise ValueError(f"toy data: n must be an integer of at least {classes} (one point per class), got {n}")
    return [int(n) // classes + (1 if c < int(n) % classes else 0) for c in range(classes)]


def _check_noise(noise):
    if noise < 0:
        raise ValueError(f"toy data: noise must be >= 0, got {noise}")
    return float(noise)


def _finish(parts, noise, rng):
    """Stack per-class point arrays, jitter them, and shuffle points and labels together."""
    x = np.concatenate(parts)
    y = np.concatenate([np.full(len(part), label, dtype=np.int64) for label, part in enumerate(parts)])
    x = x + rng.normal(0.0, noise, size=x.shape)
    order = rng.permutation(len(y))
    return x[order].astype(np.float32), y[order]


def spiral(n=400, classes=2, noise=0.05, turns=1.5, seed=0):
    """`classes` spiral arms, each sweeping `turns` turns outwards from the centre to
    radius 1, the arms rotated 2 pi / classes apart."""
    if int(classes) != classes or classes < 2:
        raise ValueError(f"spiral: classes must be an integer >= 2, got {classes}")
    rng = np.random.default_rng(seed)
    noise = _check_noise(noise)
    parts = []
    for label, size in enumerate(_class_sizes(n, int(classes))):
        radius = np.linspace(0.05, 1.0, size)
        angle = 2 * np.pi * (turns * radius + label / classes)
        parts.append(np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1))
    return _finish(parts, noise, rng)


def circles(n=400, noise=0.05, inner_radius=0.4, seed=0):
    """Label 1: points uniform in a disc of `inner_radius`; label 0: a ring from
    radius 0.65 to 1 (a clear gap for small noise)."""
    if not 0 < inner_radius < 0.65:
        raise ValueError(f"circles: inner_radius must be in (0, 0.65), got {inner_radius}")
    rng = np.random.default_rng(seed)
    noise = _check_noise(noise)
    outer_size, inner_size = _class_sizes(n, 2)

    def annulus(size, low, high):
        # sqrt of a uniform draw spreads points evenly over the area, not the radius
        radius = np.sqrt(rng.uniform(low**2, high**2, size))
        angle = rng.uniform(0, 2 * np.pi, size)
        return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)

    return _finish([annulus(outer_size, 0.65, 1.0), annulus(inner_size, 0.0, inner_radius)], noise, rng)


def xor(n=400, noise=0.05, margin=0.1, seed=0):
    """Label 1 where x0 * x1 < 0 (the second and fourth quadrants), 0 elsewhere; points
    keep `margin` away from both axes before the noise, so the classes do not touch."""
    if not 0 <= margin < 1:
        raise ValueError(f"xor: margin must be in [0, 1), got {margin}")
    rng = np.random.default_rng(seed)
    noise = _check_noise(noise)
    parts = []
    for label, size in enumerate(_class_sizes(n, 2)):
        magnitude = rng.uniform(margin, 1.0, size=(size, 2))
        first_sign = rng.choice([-1.0, 1.0], size)
        # label 0: both signs equal; label 1: opposite signs
        second_sign = first_sign if label == 0 else -first_sign
        parts.append(magnitude * np.stack([first_sign, second_sign], axis=1))
    return _finish(parts, noise, rng)


def moons(n=400, noise=0.05, seed=0):
    """Two interleaving half circles (as scikit-learn's make_moons), scaled into [-1, 1]:
    label 0 the upper arc, label 1 the lower one, shifted right and down."""
    rng = np.random.default_rng(seed)
    noise = _check_noise(noise)
    upper_size, lower_size = _class_sizes(n, 2)
    upper_angle = np.linspace(0, np.pi, upper_size)
    lower_angle = np.linspace(0, np.pi, lower_size)
    upper = np.stack([np.cos(upper_angle), np.sin(upper_angle)], axis=1)
    lower = np.stack([1 - np.cos(lower_angle), 0.5 - np.sin(lower_angle)], axis=1)
    # make_moons spans x in [-1, 2] and y in [-0.5, 1]: centre and halve both spans
    centre, scale = np.array([0.5, 0.25]), np.array([1 / 1.5, 1 / 0.75])
    return _finish([(upper - centre) * scale, (lower - centre) * scale], noise, rng)


#: The generators by name, for command lines (`--dataset spiral`).
TOY_SETS = {"spiral": spiral, "circles": circles, "xor": xor, "moons": moons}


def make_toy(name, n=400, noise=0.05, seed=0):
    """The toy set called `name` (a key of TOY_SETS) with n points -> (x, y)."""
    try:
        generator = TOY_SETS[name]
    except KeyError:
        raise ValueError(f"unknown toy data set {name!r}: choose one of {', '.join(TOY_SETS)}") from None
    return generator(n=n, noise=noise, seed=seed)
