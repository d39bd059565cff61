"""Layers that merge several inputs into one, with Keras' names: Concatenate."""
from minidl.nn.module import Module
from minidl.ops.shape import concatenate


class Concatenate(Module):
    """Join its inputs along `axis` (Keras' default -1, the features): called with
    several tensors, `Concatenate()(a, b)`, of shapes that agree outside that axis.

    >>> import numpy as np, minidl
    >>> Concatenate()(minidl.tensor(np.ones((2, 3))), minidl.tensor(np.zeros((2, 4)))).shape
    (2, 7)
    """

    def __init__(self, axis=-1, name=None):
        super().__init__(name)
        self.axis = int(axis)
        self.built = True  # no weights

    def forward(self, *inputs):
        if len(inputs) < 2:
            raise ValueError(f"{self.name}: Concatenate needs at least two inputs, got {len(inputs)}")
        return concatenate(inputs, axis=self.axis)

    def compute_output_shape(self, input_shapes):
        """The shape of the joined output, from the list of the inputs' shapes."""
        shapes = [tuple(shape) for shape in input_shapes]
        rank = len(shapes[0])
        axis = self.axis % rank
        if any(len(shape) != rank or any(shape[i] != shapes[0][i] for i in range(rank) if i != axis)
               for shape in shapes[1:]):
            raise ValueError(f"{self.name}: inputs of shapes {shapes} differ outside axis {self.axis}")
        joined = None if any(shape[axis] is None for shape in shapes) else sum(shape[axis] for shape in shapes)
        return shapes[0][:axis] + (joined,) + shapes[0][axis + 1:]

    def get_config(self):
        return {"name": self.name, "axis": self.axis}
