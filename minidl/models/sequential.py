"""Sequential: layers applied one after another, as a Model that trains (Keras' Sequential)."""
from minidl.nn.module import Module, layer_from_config, serialize
from minidl.train.model import Model


class Sequential(Model):
    """Apply `layers` in order. `build(input_shape)` creates every layer's weights from
    the input shape (batch as None) without running data through them."""

    def __init__(self, layers=(), name=None):
        super().__init__(name)
        self.layers = []
        for layer in layers:
            self.add(layer)

    def add(self, layer):
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential.add: expected a layer (Module), got {type(layer).__name__}")
        setattr(self, f"layer{len(self.layers)}", layer)
        self.layers.append(layer)
        self.built = False

    def build(self, input_shape):
        self.input_shape = tuple(input_shape)
        shape = tuple(input_shape)
        for layer in self.layers:
            if not layer.built:
                layer.build(shape)
                layer.built = True
            shape = layer.compute_output_shape(shape)
        self.built = True

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
        return shape

    def output_shapes(self, input_shape):
        """(layer, output shape) for each layer, for summaries."""
        shapes, shape = [], tuple(input_shape)
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
            shapes.append((layer, shape))
        return shapes

    def __getitem__(self, index):
        return self.layers[index]

    def __len__(self):
        return len(self.layers)

    def get_config(self):
        return {"name": self.name, "layers": [serialize(layer) for layer in self.layers]}

    @classmethod
    def from_config(cls, config):
        return cls([layer_from_config(spec) for spec in config["layers"]], name=config.get("name"))
