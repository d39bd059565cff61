"""Pooling layers with Keras' names and defaults (strides default to pool_size), channels
last; plus SumPooling and GlobalSumPooling, which Keras lacks."""
from minidl.nn.module import Module
from minidl.ops import pool as ops
from minidl.ops.conv import check_padding, positive_ints, window_geometry


class BasePooling(Module):
    """A pooling window slid over `len(axis_names)` spatial axes of (batch, *spatial, c)."""

    axis_names = ()
    pool = None  # the op, e.g. max_pool1d

    def __init__(self, pool_size=2, strides=None, padding="valid", name=None):
        super().__init__(name)
        layer, rank = type(self).__name__, len(self.axis_names)
        self.pool_size = positive_ints(layer, "pool_size", pool_size, rank)
        self.strides = self.pool_size if strides is None else positive_ints(layer, "strides", strides, rank)
        self.padding = check_padding(layer, padding)

    def forward(self, x):
        return self.pool(x, self.pool_size, self.strides, self.padding)

    def compute_output_shape(self, input_shape):
        spatial = tuple(
            None if size is None else window_geometry(self.name, "pool", axis, size, p, s, 1, self.padding)[0]
            for axis, size, p, s in zip(self.axis_names, input_shape[1:-1], self.pool_size, self.strides)
        )
        return (input_shape[0],) + spatial + (input_shape[-1],)

    def get_config(self):
        return {"name": self.name, "pool_size": self.pool_size, "strides": self.strides, "padding": self.padding}


class MaxPooling1D(BasePooling):
    axis_names = ("length",)
    pool = staticmethod(ops.max_pool1d)


class MaxPooling2D(BasePooling):
    axis_names = ("height", "width")
    pool = staticmethod(ops.max_pool2d)


class AveragePooling1D(BasePooling):
    """The mean of each window; with padding='same' the padding is not counted."""

    axis_names = ("length",)
    pool = staticmethod(ops.avg_pool1d)


class AveragePooling2D(BasePooling):
    """The mean of each window; with padding='same' the padding is not counted."""

    axis_names = ("height", "width")
    pool = staticmethod(ops.avg_pool2d)


class SumPooling1D(BasePooling):
    axis_names = ("length",)
    pool = staticmethod(ops.sum_pool1d)


class SumPooling2D(BasePooling):
    axis_names = ("height", "width")
    pool = staticmethod(ops.sum_pool2d)


class BaseGlobalPooling(Module):
    """One reduction over every spatial axis: (batch, *spatial, c) -> (batch, c)."""

    pool = None  # the op, e.g. global_max_pool1d

    def forward(self, x):
        return self.pool(x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


class GlobalMaxPooling1D(BaseGlobalPooling):
    pool = staticmethod(ops.global_max_pool1d)


class GlobalMaxPooling2D(BaseGlobalPooling):
    pool = staticmethod(ops.global_max_pool2d)


class GlobalAveragePooling1D(BaseGlobalPooling):
    pool = staticmethod(ops.global_avg_pool1d)


class GlobalAveragePooling2D(BaseGlobalPooling):
    pool = staticmethod(ops.global_avg_pool2d)


class GlobalSumPooling1D(BaseGlobalPooling):
    pool = staticmethod(ops.global_sum_pool1d)


class GlobalSumPooling2D(BaseGlobalPooling):
    pool = staticmethod(ops.global_sum_pool2d)
