"""GraphModel: layers wired as a directed acyclic graph, as in a Keras functional Model.

Each layer reads the outputs of earlier layers (or the model's inputs) by name:

    GraphModel(layers=[embedding, conv_a, conv_b, join, output],
               inbound={"embedding": ["ids"], "conv_a": ["embedding"], "conv_b": ["embedding"],
                        "join": ["conv_a", "conv_b"], "output": ["join"]},
               inputs=["ids"], outputs=["output"], input_shape=(None, 75), input_dtype="int32")

`layers` are in an order where every layer comes after those it reads (Keras' JSON lists
them so), which is the order `forward` runs them in; a layer that reads several outputs
is called with them all (`Concatenate()(a, b)`). The input shape is known up front, so
every weight is created when the model is made (`build` passes the shapes along the
graph), and the whole graph is plain config data (`get_config`): the model saves and
loads with `minidl.io` like any other. `minidl.interop.keras` builds these from Keras
model files.
"""
from minidl.nn.module import Module, layer_from_config, serialize
from minidl.train.model import Model
from minidl.train.objectives import PROBABILITY_ACTIVATIONS


def _shape_tuple(shape):
    return tuple(None if n is None else int(n) for n in shape)


class GraphModel(Model):
    """Layers as a directed acyclic graph; see the module docstring.

    layers: Modules, each with a unique name (no dots), every one after those it reads.
    inbound: {layer name: [the names it reads]}, names of earlier layers or of inputs.
    inputs: the input names, in the order `forward` takes the inputs.
    outputs: the layers whose outputs the model returns (one tensor when one name).
    input_shape: the input's shape, batch as None (a list of shapes for several inputs).
    input_dtype: the input's dtype name ("int32" for ids; a list for several inputs),
        None for the floating default.
    """

    def __init__(self, layers, inbound, inputs, outputs, input_shape, input_dtype=None, name="graph_model"):
        super().__init__(name)
        self.layers = list(layers)
        self.inbound = {layer: list(sources) for layer, sources in inbound.items()}
        self.inputs, self.outputs = list(inputs), list(outputs)
        several = bool(input_shape) and isinstance(input_shape[0], (list, tuple))
        self.input_shapes = [_shape_tuple(s) for s in input_shape] if several else [_shape_tuple(input_shape)]
        dtypes = input_dtype if isinstance(input_dtype, (list, tuple)) else [input_dtype] * len(self.input_shapes)
        self.input_dtypes = list(dtypes)
        self._output_shapes = {}
        self._check_graph()
        for layer in self.layers:
            if layer.name in self.__dict__ or hasattr(type(self), layer.name):
                raise ValueError(f"{self.name}: a layer may not be called {layer.name!r}, a GraphModel attribute")
            self._modules[layer.name] = layer  # registered by its own name: state_dict keys "lstm_1.kernel"
        self.build(self.input_shape)

    def _check_graph(self):
        if len(self.inputs) != len(self.input_shapes) or len(self.input_dtypes) != len(self.inputs):
            raise ValueError(f"{self.name}: {len(self.inputs)} inputs but {len(self.input_shapes)} input shapes "
                             f"and {len(self.input_dtypes)} input dtypes")
        known = set(self.inputs)
        if len(known) != len(self.inputs):
            raise ValueError(f"{self.name}: the input names {self.inputs} repeat")
        for layer in self.layers:
            if not isinstance(layer, Module):
                raise TypeError(f"{self.name}: expected layers (Modules), got {type(layer).__name__}")
            if layer.name in known or "." in layer.name:
                raise ValueError(f"{self.name}: the layer name {layer.name!r} repeats a name or holds a dot")
            sources = self.inbound.get(layer.name)
            if not sources:
                raise ValueError(f"{self.name}: layer {layer.name!r} reads nothing (no inbound entry)")
            unknown = [source for source in sources if source not in known]
            if unknown:
                raise ValueError(f"{self.name}: layer {layer.name!r} reads {unknown}, which are neither inputs "
                                 "nor layers before it")
            known.add(layer.name)
        extra = sorted(set(self.inbound) - {layer.name for layer in self.layers})
        missing = [output for output in self.outputs if output not in known]
        if extra or missing or not self.outputs:
            raise ValueError(f"{self.name}: inbound entries for no layer {extra}, unknown outputs {missing}, "
                             f"or no output at all")

    @property
    def input_shape(self):
        return self.input_shapes[0] if len(self.input_shapes) == 1 else self.input_shapes

    @property
    def input_dtype(self):
        return self.input_dtypes[0] if len(self.input_dtypes) == 1 else self.input_dtypes

    @property
    def outputs_logits(self):
        """False when the (first) output layer ends in sigmoid or softmax (probabilities)."""
        return getattr(self.get_layer(self.outputs[0]), "activation_name", None) not in PROBABILITY_ACTIVATIONS

    def get_layer(self, name):
        """The layer called `name`."""
        if name not in self._modules:
            raise KeyError(f"{self.name}: no layer named {name!r}")
        return self._modules[name]

    def _run(self, values, step):
        """Walk the layers in order: values[name] = step(layer, what it reads)."""
        for layer in self.layers:
            read = [values[source] for source in self.inbound[layer.name]]
            values[layer.name] = step(layer, read)
        return values

    def build(self, input_shape):
        """Create every layer's weights from the input shape(s), passing shapes along the graph."""
        shapes = input_shape if len(self.inputs) > 1 else [input_shape]

        def build_layer(layer, read):
            shape = read[0] if len(read) == 1 else read
            if not layer.built:
                layer.build(shape)
                layer.built = True
            return layer.compute_output_shape(shape)

        self._output_shapes = self._run(dict(zip(self.inputs, (_shape_tuple(s) for s in shapes))), build_layer)
        self.built = True

    def layer_output_shape(self, name):
        """The output shape of the layer `name` (batch as None), as built."""
        if name not in self._output_shapes:
            raise KeyError(f"{self.name}: no layer named {name!r}")
        return self._output_shapes[name]

    def compute_output_shape(self, input_shape):
        outputs = [self._output_shapes[name] for name in self.outputs]
        return (input_shape[0],) + tuple(outputs[0][1:]) if len(outputs) == 1 else outputs

    def _check_input(self, name, x, shape):
        got = tuple(x.shape)
        if len(got) != len(shape) or any(n is not None and n != m for n, m in zip(shape[1:], got[1:])):
            expected = "(batch, " + ", ".join(str(n) for n in shape[1:]) + ")"
            raise ValueError(f"{self.name}: input {name!r} must have shape {expected}, got {got}")

    def forward(self, *inputs):
        if len(inputs) != len(self.inputs):
            raise ValueError(f"{self.name}: takes {len(self.inputs)} inputs ({', '.join(self.inputs)}), "
                             f"got {len(inputs)}")
        for name, x, shape in zip(self.inputs, inputs, self.input_shapes):
            self._check_input(name, x, shape)
        values = self._run(dict(zip(self.inputs, inputs)), lambda layer, read: layer(*read))
        outputs = [values[name] for name in self.outputs]
        return outputs[0] if len(outputs) == 1 else outputs

    def get_config(self):
        shapes = [list(shape) for shape in self.input_shapes]
        return {"name": self.name, "layers": [serialize(layer) for layer in self.layers], "inbound": self.inbound,
                "inputs": self.inputs, "outputs": self.outputs,
                "input_shape": shapes[0] if len(shapes) == 1 else shapes,
                "input_dtype": self.input_dtype}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        layers = [layer_from_config(spec) for spec in config.pop("layers")]
        return cls(layers, **config)
