"""URL models that read a URL more than one way: their input is one int32 row per URL
that holds several tokenisations side by side (minidl.data.URLEncoder), e.g. the
characters and the hashed n-grams. One array in keeps fit, predict, the summaries, the
model file and the command line as they are for the character models.

`PackedInput` is the mixin such a model adds to its URL model base: it names the parts
and their widths (`input_parts()`, from the model's own sizes), slices an input row into
them and builds the matching URLEncoder (`make_tokenizer`).
"""
from minidl.autograd import Tensor
from minidl.data.text import URLEncoder


class PackedInput:
    """Mixin for a URL model whose input packs several tokenisations (see the module)."""

    def input_parts(self):
        """[(name, width)] of the input row, in order."""
        raise NotImplementedError

    def tokenizers(self, texts, truncating):
        """{name: tokeniser} matching input_parts(); `texts` are the training URLs, for
        a tokeniser that learns a vocabulary."""
        raise NotImplementedError

    @property
    def input_shape(self):
        return (None, sum(width for _, width in self.input_parts()))

    def make_tokenizer(self, texts=None, truncating="post"):
        """The URLEncoder that makes this model's input from URLs (fitted on `texts`,
        the training URLs, where a part learns a vocabulary)."""
        encoder = URLEncoder(self.tokenizers(texts, truncating))
        expected = [(name, width) for name, _, width in encoder.layout()]
        if expected != list(self.input_parts()):
            raise ValueError(f"{type(self).__name__}: the tokenisers give the parts {expected}, "
                             f"the model reads {list(self.input_parts())}")
        return encoder

    def split_input(self, x):
        """{name: the part's columns} of a packed input (batch, width), as raw arrays."""
        data = x.data if isinstance(x, Tensor) else x
        width = self.input_shape[1]
        if data.ndim != 2 or data.shape[1] != width:
            names = " | ".join(f"{name} {size}" for name, size in self.input_parts())
            raise ValueError(f"{type(self).__name__}: expects packed ids of shape (batch, {width}) "
                             f"({names}), got {tuple(data.shape)}")
        parts, start = {}, 0
        for name, size in self.input_parts():
            parts[name] = data[:, start:start + size]
            start += size
        return parts
