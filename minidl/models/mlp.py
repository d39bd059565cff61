"""A multi-layer perceptron with a choice of depth, width and activation (the MLP
playground's model), and the grid of its predictions over a 2D input plane that a
decision-boundary figure is drawn from.

    model = mlp(depth=3, width=8, activation="tanh", classes=2)
    xx, yy, probabilities = decision_surface(model, x, resolution=200)
"""
import numpy as np

from minidl.models.sequential import Sequential
from minidl.nn import Dense
from minidl.train import predict

#: The hidden activations the playground offers (Keras names, see minidl.nn.activations).
HIDDEN_ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "leaky_relu", "linear")


def classifier_head(classes, name="output"):
    """The last layer of a classifier of `classes` classes, as Keras writes it:
    Dense(1, sigmoid) for two classes (0/1 targets), Dense(classes, softmax) for more
    (integer targets); both output probabilities, which `minidl.train` reads."""
    if int(classes) != classes or classes < 2:
        raise ValueError(f"classifier_head: classes must be an integer >= 2, got {classes}")
    if classes == 2:
        return Dense(1, activation="sigmoid", name=name)
    return Dense(int(classes), activation="softmax", name=name)


def mlp(depth=2, width=8, activation="tanh", classes=2, input_dim=2, kernel_initializer="glorot_uniform",
        name="mlp"):
    """Sequential of `depth` hidden Dense(width, activation) layers and a classifier head
    (see `classifier_head`): (batch, input_dim) floats -> (batch, 1) or (batch, classes)
    probabilities. depth 0 gives logistic (or softmax) regression. The model is built
    for (None, input_dim), so its weights exist at once."""
    if int(depth) != depth or depth < 0:
        raise ValueError(f"mlp: depth must be an integer >= 0, got {depth}")
    if int(width) != width or width < 1:
        raise ValueError(f"mlp: width must be a positive integer, got {width}")
    if activation not in HIDDEN_ACTIVATIONS:
        raise ValueError(f"mlp: unknown activation {activation!r}: choose one of {', '.join(HIDDEN_ACTIVATIONS)}")
    layers = [Dense(int(width), activation=activation, kernel_initializer=kernel_initializer, name=f"hidden{i}")
              for i in range(int(depth))]
    model = Sequential([*layers, classifier_head(classes)], name=name)
    model.build((None, int(input_dim)))
    return model


def decision_surface(model, x, resolution=200, margin=0.15):
    """The model's predictions on a grid covering the 2D points `x` (n, 2) plus
    `margin` times their span on each side -> (xx, yy, probabilities): xx and yy
    (resolution, resolution) grid coordinates, probabilities (resolution, resolution)
    of class 1 for a binary model, (resolution, resolution, classes) otherwise."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"decision_surface: needs 2D points of shape (n, 2), got {x.shape}")
    if int(resolution) != resolution or resolution < 2:
        raise ValueError(f"decision_surface: resolution must be an integer >= 2, got {resolution}")
    low, high = x.min(axis=0), x.max(axis=0)
    pad = margin * np.maximum(high - low, 1e-6)
    axes = [np.linspace(low[i] - pad[i], high[i] + pad[i], int(resolution)) for i in range(2)]
    xx, yy = np.meshgrid(*axes)
    grid = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float32)
    probabilities = predict(model, grid, batch_size=4096)
    if probabilities.ndim == 2 and probabilities.shape[1] == 1:
        probabilities = probabilities[:, 0]
    return xx, yy, probabilities.reshape(xx.shape + probabilities.shape[1:])
