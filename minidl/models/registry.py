"""Every URL architecture by its command-line name (`--arch`), and `build_model`."""
from minidl.models import url
from minidl.models.urlnet import URLNet
from minidl.models.wide import NgramLinear, WideConvMax

#: The command line's --arch names: the character models of minidl.models.url, the
#: wide models of minidl.models.wide and URLNet.
ARCHITECTURES = {**url.ARCHITECTURES, "ngram_linear": NgramLinear, "wide_conv_max": WideConvMax, "urlnet": URLNet}

#: What each architecture is, in a line (`minidl train --help` shows them).
DESCRIPTIONS = {
    "simple_lstm": "the 2017 notebook's embedding -> LSTM -> sigmoid",
    "lstm_conv": "the notebook's embedding -> Conv1D -> max pooling -> LSTM",
    "conv_fully": "the notebook's four Conv1D branches summed over time -> two dense layers",
    "conv_max": "conv_fully's branches with a max over time and no hidden layers (the best recipe's)",
    "ngram_linear": "a linear model over hashed character 1-5-grams (TF-IDF-like, no embedding)",
    "wide_conv_max": "ngram_linear and conv_max side by side, one sigmoid",
    "urlnet": "URLNet (Le et al. 2018): a character branch and a word branch of convolutions",
}


def describe_architecture(arch):
    """One line that says what `arch` is."""
    return DESCRIPTIONS[arch]


def build_model(arch, **sizes):
    """The URL model named `arch` (one of ARCHITECTURES) with `sizes`."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}: choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch](**sizes)
