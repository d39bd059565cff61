"""Worked models: the source notebook's URL classifiers, their summaries, and CBOW
character embeddings to initialise them."""
from minidl.models.cbow import CBOW, character_labels, context_windows, pca_2d, plot_embedding, train_cbow
from minidl.models.summary import LayerRow, layer_rows, print_layers_dims, summary
from minidl.models.url import (
    ADAM,
    ARCHITECTURES,
    ConvBranch,
    ConvFully,
    DenseBlock,
    LSTMConv,
    SimpleLSTM,
    URLModel,
    build_model,
    conv_fully,
    lstm_conv,
    simple_lstm,
)

__all__ = [
    "ADAM", "ARCHITECTURES", "CBOW", "ConvBranch", "ConvFully", "DenseBlock", "LSTMConv", "LayerRow",
    "SimpleLSTM", "URLModel", "build_model", "character_labels", "context_windows", "conv_fully",
    "layer_rows", "lstm_conv", "pca_2d", "plot_embedding", "print_layers_dims", "simple_lstm",
    "summary", "train_cbow",
]
