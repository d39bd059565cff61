"""Layers and containers with Keras' names and defaults."""
from minidl.nn.container import Sequential
from minidl.nn.core import ELU, Activation, Dense, Dropout, Embedding, Flatten, ReLU, Softmax
from minidl.nn.module import LAYERS, Module, Parameter, layer_from_config, serialize
from minidl.nn.norm import BatchNormalization
