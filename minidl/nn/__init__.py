"""Layers with Keras' names and defaults, and the summary table of a tree of them.
Containers that train (Sequential, GraphModel) are models: minidl.models."""
from minidl.nn.core import ELU, Activation, Dense, Dropout, Embedding, EmbeddingBag, Flatten, ReLU, Softmax
from minidl.nn.merge import Concatenate
from minidl.nn.module import LAYERS, Module, Parameter, layer_from_config, serialize
from minidl.nn.norm import BatchNormalization
from minidl.nn.conv import Conv1D, Conv2D
from minidl.nn.pool import (
    AveragePooling1D,
    AveragePooling2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalSumPooling1D,
    GlobalSumPooling2D,
    MaxPooling1D,
    MaxPooling2D,
    SumPooling1D,
    SumPooling2D,
)
from minidl.nn.recurrent import GRU, LSTM, SimpleRNN
from minidl.nn.summary import LayerRow, layer_rows, parameter_counts, print_layers_dims, summary
