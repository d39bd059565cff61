"""Recurrent layers with Keras' names, weights and defaults: SimpleRNN, LSTM, GRU.

Input (batch, time, features) -> the last hidden state (batch, units), or every one
(batch, time, units) with return_sequences=True. Weights `kernel` (features, G*units),
`recurrent_kernel` (units, G*units) and `bias`, initialised as Keras does (glorot_uniform,
orthogonal, zeros; the LSTM's forget-gate bias at 1); activation tanh, fixed. The LSTM's
and GRU's gates take `recurrent_activation`, "sigmoid" (the default, Keras' since 2.3.0)
or "hard_sigmoid" (Keras 2's clip(0.2 x + 0.5, 0, 1), the earlier default, which models
trained with Keras 2 need; Keras 3 changed its slope to 1/6, a form minidl does not
offer). Each call runs the whole sequence as one op
(`ops.recurrent.*_sequence`); the equations are in those ops' docstrings. The initial
states are zeros.
"""
import numpy as np

from minidl.nn import init
from minidl.nn.module import Module
from minidl.ops.recurrent import check_recurrent_activation, gru_sequence, lstm_sequence, rnn_sequence


class RecurrentLayer(Module):
    """What SimpleRNN, LSTM and GRU share; a subclass sets `gates` (the G blocks of the
    weights) and `run(x)`, the sequence op on the layer's weights, which returns the
    layer's output (the last state unless return_sequences)."""

    def __init__(self, units, return_sequences=False, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, name=None):
        super().__init__(name)
        if int(units) < 1:
            raise ValueError(f"{type(self).__name__}: units must be positive, got {units}")
        self.units = int(units)
        self.return_sequences = bool(return_sequences)
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = kernel_regularizer
        self.recurrent_regularizer = recurrent_regularizer
        self.bias_regularizer = bias_regularizer

    def bias_shape(self):
        return (self.gates * self.units,)

    def initial_bias(self, shape):
        return init.get(self.bias_initializer)(shape)

    def _check_input_shape(self, shape):
        if len(shape) != 3:
            raise ValueError(f"{self.name}: expects input of shape (batch, time, features), got shape {tuple(shape)}")

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        width = self.gates * self.units
        self.add_weight("kernel", (input_shape[-1], width), self.kernel_initializer, self.kernel_regularizer)
        self.add_weight("recurrent_kernel", (self.units, width), self.recurrent_initializer,
                        self.recurrent_regularizer)
        self.add_weight("bias", self.bias_shape(), self.initial_bias, self.bias_regularizer)
        self.built = True

    def run(self, x):
        raise NotImplementedError(f"{type(self).__name__} defines no run()")

    def forward(self, x):
        self._check_input_shape(x.shape)
        if x.shape[-1] != self.kernel.shape[0]:
            raise ValueError(f"{self.name}: input has {x.shape[-1]} features, the layer expects {self.kernel.shape[0]}")
        return self.run(x)

    def last_or_all(self, hidden):
        """Every hidden state (batch, time, units) or, by default, the last (batch, units)."""
        return hidden if self.return_sequences else hidden[:, -1, :]

    def compute_output_shape(self, input_shape):
        self._check_input_shape(input_shape)
        if self.return_sequences:
            return (input_shape[0], input_shape[1], self.units)
        return (input_shape[0], self.units)

    def get_config(self):
        return {"name": self.name, "units": self.units, "return_sequences": self.return_sequences,
                "kernel_initializer": self.kernel_initializer, "recurrent_initializer": self.recurrent_initializer,
                "bias_initializer": self.bias_initializer, "kernel_regularizer": self.kernel_regularizer,
                "recurrent_regularizer": self.recurrent_regularizer, "bias_regularizer": self.bias_regularizer}


class SimpleRNN(RecurrentLayer):
    """h_t = tanh(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias) (Elman 1990)."""

    gates = 1

    def run(self, x):
        return self.last_or_all(rnn_sequence(x, None, self.kernel, self.recurrent_kernel, self.bias))


class GatedRecurrentLayer(RecurrentLayer):
    """What LSTM and GRU share beyond RecurrentLayer: the gates' `recurrent_activation`."""

    def __init__(self, units, return_sequences=False, recurrent_activation="sigmoid", **kwargs):
        super().__init__(units, return_sequences, **kwargs)
        self.recurrent_activation = check_recurrent_activation(type(self).__name__, recurrent_activation)

    def get_config(self):
        return dict(super().get_config(), recurrent_activation=self.recurrent_activation)


class LSTM(GatedRecurrentLayer):
    """Long short-term memory, Keras' gate order i, f, c, o (see `ops.recurrent.lstm_cell`).
    unit_forget_bias=True starts the forget gate's bias at 1, so the cell remembers by
    default early in training (Jozefowicz et al. 2015), as Keras does.

    >>> import numpy as np, minidl
    >>> lstm = LSTM(8)
    >>> lstm(minidl.tensor(np.zeros((2, 5, 3), dtype="float32"))).shape    # the last h
    (2, 8)
    >>> lstm.kernel.shape, lstm.recurrent_kernel.shape, lstm.bias.shape  # gates i, f, c, o
    ((3, 32), (8, 32), (32,))
    >>> lstm.bias.numpy().reshape(4, 8)[:, 0].tolist()                    # forget bias 1
    [0.0, 1.0, 0.0, 0.0]
    """

    gates = 4

    def __init__(self, units, return_sequences=False, unit_forget_bias=True, **kwargs):
        super().__init__(units, return_sequences, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    def initial_bias(self, shape):
        if not self.unit_forget_bias:
            return super().initial_bias(shape)
        units, initializer = self.units, init.get(self.bias_initializer)
        return np.concatenate([initializer((units,)), np.ones(units), initializer((2 * units,))])

    def run(self, x):
        return lstm_sequence(x, None, None, self.kernel, self.recurrent_kernel, self.bias,
                             recurrent_activation=self.recurrent_activation, return_sequences=self.return_sequences)

    def get_config(self):
        return dict(super().get_config(), unit_forget_bias=self.unit_forget_bias)


class GRU(GatedRecurrentLayer):
    """Gated recurrent unit, Keras' gate order z, r, h (see `ops.recurrent.gru_cell`).
    reset_after=True (Keras' default) applies the reset gate after the recurrent product
    and keeps a second, recurrent bias: `bias` is then (2, 3*units)."""

    gates = 3

    def __init__(self, units, return_sequences=False, reset_after=True, **kwargs):
        super().__init__(units, return_sequences, **kwargs)
        self.reset_after = bool(reset_after)

    def bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def run(self, x):
        return self.last_or_all(gru_sequence(x, None, self.kernel, self.recurrent_kernel, self.bias,
                                             reset_after=self.reset_after,
                                             recurrent_activation=self.recurrent_activation))

    def get_config(self):
        return dict(super().get_config(), reset_after=self.reset_after)
