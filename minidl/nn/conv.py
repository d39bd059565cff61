"""Convolution layers with Keras' names and defaults: Conv1D and Conv2D, channels last."""
from minidl.nn import activations
from minidl.nn.module import Module
from minidl.ops.conv import check_padding, conv1d, conv2d, positive_ints, window_geometry


class BaseConv(Module):
    """y = activation(conv(x, kernel) + bias) over `len(axis_names)` spatial axes:
    x (batch, *spatial, c_in), kernel (*kernel_size, c_in, filters), bias (filters,)."""

    axis_names = ()
    convolve = None  # the op: conv1d or conv2d

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation_rate=1, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, name=None):
        super().__init__(name)
        layer, rank = type(self).__name__, len(self.axis_names)
        self.filters = positive_ints(layer, "filters", filters, 1)[0]
        self.kernel_size = positive_ints(layer, "kernel_size", kernel_size, rank)
        self.strides = positive_ints(layer, "strides", strides, rank)
        self.padding = check_padding(layer, padding)
        self.dilation_rate = positive_ints(layer, "dilation_rate", dilation_rate, rank)
        self.activation_name = activation
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = kernel_regularizer

    def build(self, input_shape):
        if len(input_shape) != len(self.axis_names) + 2:
            raise ValueError(f"{self.name}: input must be (batch, {', '.join(self.axis_names)}, channels), "
                             f"got shape {tuple(input_shape)}")
        kernel_shape = self.kernel_size + (input_shape[-1], self.filters)
        self.add_weight("kernel", kernel_shape, self.kernel_initializer, self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer)
        self.built = True

    def forward(self, x):
        out = self.convolve(x, self.kernel, self.bias if self.use_bias else None, stride=self.strides,
                            padding=self.padding, dilation=self.dilation_rate)
        return self.activation(out)

    def compute_output_shape(self, input_shape):
        spatial = tuple(
            None if size is None else window_geometry(self.name, "kernel", axis, size, k, s, d, self.padding)[0]
            for axis, size, k, s, d in zip(self.axis_names, input_shape[1:-1], self.kernel_size, self.strides,
                                           self.dilation_rate)
        )
        return (input_shape[0],) + spatial + (self.filters,)

    def get_config(self):
        return {"name": self.name, "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "dilation_rate": self.dilation_rate,
                "activation": self.activation_name, "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer, "bias_initializer": self.bias_initializer,
                "kernel_regularizer": self.kernel_regularizer}


class Conv1D(BaseConv):
    """Keras' Conv1D: (batch, length, c_in) -> (batch, out_length, filters)."""

    axis_names = ("length",)
    convolve = staticmethod(conv1d)


class Conv2D(BaseConv):
    """Keras' Conv2D: (batch, height, width, c_in) -> (batch, out_h, out_w, filters);
    kernel_size, strides and dilation_rate an int or a (rows, columns) pair."""

    axis_names = ("height", "width")
    convolve = staticmethod(conv2d)
