"""BatchNormalization with Keras' defaults (momentum 0.99, epsilon 1e-3, axis -1)."""
import numpy as np

from minidl.nn.module import Module
from minidl.ops.norm import batch_norm


class BatchNormalization(Module):
    """Normalise each channel (last axis) with batch statistics while training and the
    running statistics in eval mode; learnable scale `gamma` and offset `beta`."""

    def __init__(self, momentum=0.99, epsilon=1e-3, center=True, scale=True, name=None):
        super().__init__(name)
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.center, self.scale = center, scale

    def build(self, input_shape):
        channels = (input_shape[-1],)
        self.add_weight("gamma", channels, "ones", trainable=self.scale)
        self.add_weight("beta", channels, "zeros", trainable=self.center)
        self.add_buffer("moving_mean", np.zeros(channels))
        self.add_buffer("moving_variance", np.ones(channels))
        self.built = True

    def forward(self, x):
        return batch_norm(x, self.gamma, self.beta, self.moving_mean, self.moving_variance,
                          training=self.training, momentum=self.momentum, epsilon=self.epsilon)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {"name": self.name, "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale}
