"""Worked models: the source notebook's URL classifiers, the wide n-gram models and
URLNet, their summaries, CBOW character embeddings to initialise them, the DGA, botnet,
image and MLP models, and GraphModel (a functional graph of layers, what Keras models
import as)."""
from minidl.models.botnet import behaviour_classifier, held_out_subclass_split, subclass_of
from minidl.models.cbow import CBOW, character_labels, context_windows, pca_2d, plot_embedding, train_cbow
from minidl.models.dga import dga_lstm, domain_name
from minidl.models.ensemble import MeanEnsemble
from minidl.models.graph import GraphModel
from minidl.models.image import as_images, conv2d_classifier, first_layer_filters
from minidl.models.mlp import HIDDEN_ACTIVATIONS, classifier_head, decision_surface, mlp
from minidl.models.packed import PackedInput
from minidl.models.sequence import RECURRENT_CELLS, recurrent_classifier
from minidl.models.registry import ARCHITECTURES, build_model
from minidl.models.sequential import Sequential
from minidl.models.url import (
    ADAM,
    ConvBranch,
    ConvFully,
    ConvMax,
    DenseBlock,
    LSTMConv,
    SimpleLSTM,
    URLClassifier,
    URLModel,
    conv_fully,
    conv_max,
    lstm_conv,
    simple_lstm,
)
from minidl.models.urlnet import MaxOverTimeBranch, URLNet
from minidl.models.wide import HashedLinear, NgramLinear, WideConvMax, ngram_weights

__all__ = [
    "HIDDEN_ACTIVATIONS", "RECURRENT_CELLS", "as_images", "behaviour_classifier", "classifier_head",
    "conv2d_classifier", "decision_surface", "dga_lstm", "domain_name", "first_layer_filters",
    "held_out_subclass_split", "mlp", "recurrent_classifier", "subclass_of",
    "ADAM", "ARCHITECTURES", "CBOW", "GraphModel", "ConvBranch", "ConvFully", "ConvMax", "DenseBlock",
    "HashedLinear", "LSTMConv", "LayerRow", "MaxOverTimeBranch", "MeanEnsemble", "NgramLinear", "PackedInput",
    "SimpleLSTM", "URLClassifier", "URLModel", "URLNet", "WideConvMax", "ngram_weights", "build_model",
    "character_labels",
    "context_windows", "conv_fully",
    "conv_max", "layer_rows", "lstm_conv", "pca_2d", "plot_embedding", "print_layers_dims", "simple_lstm",
    "summary", "train_cbow",
]
