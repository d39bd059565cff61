"""The basic layers: Dense, Embedding, EmbeddingBag, Dropout, Flatten and activation layers."""
from minidl.nn import activations
from minidl.nn.module import Module
from minidl.ops import activation as activation_ops
from minidl.ops.dropout import dropout
from minidl.ops.embedding import embedding, embedding_bag
from minidl.ops.math import linear
from minidl.ops.shape import flatten


def _check_rate(layer, rate):
    if not 0 <= rate < 1:
        raise ValueError(f"{layer}: rate must be in [0, 1), got {rate}")
    return float(rate)


class Dense(Module):
    """y = activation(x @ kernel + bias) on the last axis: (..., in) -> (..., units).

    The weights are made on the first call, from the input's last axis:

    >>> import numpy as np, minidl
    >>> layer = Dense(3, activation="relu")
    >>> layer(minidl.tensor(np.ones((2, 4), dtype="float32"))).shape
    (2, 3)
    >>> layer.kernel.shape, layer.bias.shape
    ((4, 3), (3,))
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, name=None):
        super().__init__(name)
        if int(units) < 1:
            raise ValueError(f"Dense: units must be positive, got {units}")
        self.units = int(units)
        self.activation_name = activation
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = kernel_regularizer

    def build(self, input_shape):
        self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer, self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer)
        self.built = True

    def forward(self, x):
        if x.shape[-1] != self.kernel.shape[0]:
            raise ValueError(f"{self.name}: input has {x.shape[-1]} features, the layer expects {self.kernel.shape[0]}")
        return self.activation(linear(x, self.kernel, self.bias if self.use_bias else None))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {"name": self.name, "units": self.units, "activation": self.activation_name,
                "use_bias": self.use_bias, "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer, "kernel_regularizer": self.kernel_regularizer}


class Embedding(Module):
    """Integer ids (batch, length) -> vectors (batch, length, output_dim).
    input_dim is the vocabulary size (ids 0..input_dim-1), as in Keras."""

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, input_length=None, name=None):
        super().__init__(name)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = embeddings_initializer
        self.embeddings_regularizer = embeddings_regularizer
        self.input_length = input_length
        self.build(None)

    def build(self, input_shape):
        if "embeddings" not in self._parameters:
            self.add_weight("embeddings", (self.input_dim, self.output_dim),
                            self.embeddings_initializer, self.embeddings_regularizer)
        self.built = True

    def forward(self, ids):
        return embedding(ids, self.embeddings)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def get_config(self):
        return {"name": self.name, "input_dim": self.input_dim, "output_dim": self.output_dim,
                "embeddings_initializer": self.embeddings_initializer,
                "embeddings_regularizer": self.embeddings_regularizer, "input_length": self.input_length}


class EmbeddingBag(Module):
    """The sum or mean of the rows of each sample's ids (PyTorch's EmbeddingBag):
    ids (batch, length) with an optional mask (or flat ids with offsets) -> (batch, output_dim).
    See minidl.ops.embedding.embedding_bag.

    Its gradient holds only the rows a batch used, so a large table (2^18 hashed n-grams)
    trains at the cost of the batch. An `embeddings_regularizer` (Keras' l2 factor) is
    the exact dense penalty, so it brings back a gradient of the whole table each step:
    affordable for a table of one column (a linear model's weights), not for wide rows."""

    def __init__(self, input_dim, output_dim, mode="mean", embeddings_initializer="uniform",
                 embeddings_regularizer=None, name=None):
        super().__init__(name)
        self.input_dim, self.output_dim, self.mode = int(input_dim), int(output_dim), mode
        self.embeddings_initializer = embeddings_initializer
        self.embeddings_regularizer = embeddings_regularizer
        self.add_weight("embeddings", (self.input_dim, self.output_dim), self.embeddings_initializer,
                        self.embeddings_regularizer)
        self.built = True

    def forward(self, ids, mask=None, per_sample_weights=None, offsets=None):
        return embedding_bag(ids, self.embeddings, offsets=offsets, mask=mask, per_sample_weights=per_sample_weights,
                             mode=self.mode)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        return {"name": self.name, "input_dim": self.input_dim, "output_dim": self.output_dim, "mode": self.mode,
                "embeddings_initializer": self.embeddings_initializer,
                "embeddings_regularizer": self.embeddings_regularizer}


class Dropout(Module):
    """Inverted dropout while training; the identity in eval mode."""

    def __init__(self, rate, name=None):
        super().__init__(name)
        self.rate = _check_rate("Dropout", rate)

    def forward(self, x):
        return dropout(x, self.rate, training=self.training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {"name": self.name, "rate": self.rate}


class Flatten(Module):
    """(batch, ...) -> (batch, prod(...))."""

    def forward(self, x):
        return flatten(x)

    def compute_output_shape(self, input_shape):
        size = 1
        for n in input_shape[1:]:
            size *= n
        return (input_shape[0], size)


class Activation(Module):
    """An activation by name, as a layer."""

    def __init__(self, activation, name=None):
        super().__init__(name)
        self.activation_name = activation
        self.activation = activations.get(activation)

    def forward(self, x):
        return self.activation(x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {"name": self.name, "activation": self.activation_name}


class ReLU(Module):
    def forward(self, x):
        return activation_ops.relu(x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


class ELU(Module):
    """elu with slope `alpha` for negative inputs (Keras default 1.0)."""

    def __init__(self, alpha=1.0, name=None):
        super().__init__(name)
        self.alpha = float(alpha)

    def forward(self, x):
        return activation_ops.elu(x, self.alpha)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {"name": self.name, "alpha": self.alpha}


class Softmax(Module):
    def __init__(self, axis=-1, name=None):
        super().__init__(name)
        self.axis = axis

    def forward(self, x):
        return activation_ops.softmax(x, self.axis)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {"name": self.name, "axis": self.axis}
