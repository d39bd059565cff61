"""A small 2D convolutional network for images, and its first-layer filters for plotting.

    conv2d_classifier  [Conv2D(filters_i, kernel_size, same) -> ReLU -> MaxPooling2D(2)] per
                       entry of `filters` (two by default) -> Flatten
                       -> [Dense(dense_units, relu) -> Dropout] (optional) -> Dense(classes, softmax)

Images are channels last, (batch, height, width, channels), as Keras' Conv2D reads them;
scikit-learn's 8x8 digits become (n, 8, 8, 1) with `as_images`.
"""
import numpy as np

from minidl.models.mlp import classifier_head
from minidl.models.sequential import Sequential
from minidl.nn import Dense, Dropout, Flatten, ReLU
from minidl.nn.conv import Conv2D
from minidl.nn.pool import MaxPooling2D


def conv2d_classifier(input_shape=(8, 8, 1), classes=10, filters=(16, 32), kernel_size=3, dense_units=64,
                      dropout=0.25, name="conv2d_classifier"):
    """The CNN above for images of `input_shape` (height, width, channels) ->
    (batch, classes) probabilities (or (batch, 1) for two classes). Each block halves
    the height and width, so the image must have at least 2 ** len(filters) pixels a
    side. dense_units 0 leaves out the hidden Dense layer and its Dropout."""
    height, width, _ = (int(n) for n in input_shape)
    blocks = len(filters)
    if blocks < 1:
        raise ValueError("conv2d_classifier: give at least one entry in filters")
    if min(height, width) < 2**blocks:
        raise ValueError(f"conv2d_classifier: {blocks} pooling blocks halve the image {blocks} times; "
                         f"an image of {height}x{width} is too small (needs {2 ** blocks} pixels a side)")
    layers = []
    for block, count in enumerate(filters, start=1):
        layers += [Conv2D(count, kernel_size, padding="same", name=f"conv{block}"), ReLU(name=f"relu{block}"),
                   MaxPooling2D(2, name=f"pool{block}")]
    layers.append(Flatten(name="flatten"))
    if dense_units:
        layers += [Dense(int(dense_units), activation="relu", name="dense"), Dropout(dropout, name="dropout")]
    layers.append(classifier_head(classes))
    model = Sequential(layers, name=name)
    model.build((None, height, width, int(input_shape[2])))
    return model


def as_images(flat, height, width):
    """Flat pixel rows (n, height * width) -> channels-last images (n, height, width, 1)."""
    flat = np.asarray(flat)
    if flat.ndim != 2 or flat.shape[1] != height * width:
        raise ValueError(f"as_images: expected rows of {height * width} pixels, got shape {flat.shape}")
    return flat.reshape(len(flat), height, width, 1)


def first_layer_filters(model):
    """The kernels of the first Conv2D layer of a Sequential, one image per filter:
    (filters, kernel_height, kernel_width, channels) as a NumPy array."""
    for layer in model.layers:
        if isinstance(layer, Conv2D):
            kernel = layer.kernel.numpy()  # (kh, kw, c_in, filters)
            return np.transpose(kernel, (3, 0, 1, 2))
    raise ValueError(f"first_layer_filters: {model.name} has no Conv2D layer")
