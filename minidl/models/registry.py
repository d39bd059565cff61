"""Every URL architecture by its command-line name (`--arch`), and `build_model`."""
from minidl.models import url
from minidl.models.urlnet import URLNet
from minidl.models.wide import NgramLinear, WideConvMax

#: The command line's --arch names: the character models of minidl.models.url, the
#: wide models of minidl.models.wide and URLNet.
ARCHITECTURES = {**url.ARCHITECTURES, "ngram_linear": NgramLinear, "wide_conv_max": WideConvMax, "urlnet": URLNet}


def build_model(arch, **sizes):
    """The URL model named `arch` (one of ARCHITECTURES) with `sizes`."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}: choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch](**sizes)
