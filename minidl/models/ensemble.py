"""An ensemble of trained URL models saved as one model: the mean of their probabilities.

    ensemble = MeanEnsemble([ngram_linear, wide_conv_max])       # each trained on its own
    tokenizer = ensemble.make_tokenizer_from([tokenizer_a, tokenizer_b])
    probabilities = predict(ensemble, tokenizer.encode(urls))

Each member keeps its own tokeniser: the ensemble's input row packs the members' input
rows side by side (a URLEncoder whose parts are the members' tokenisers) and each member
reads its own columns. The members are trained separately (`minidl train`); the
ensemble only averages them (`minidl ensemble` writes one), which is what the ensemble
rows of benchmarks/url_quality.py score.
"""
from minidl.data.text import URLEncoder
from minidl.models.packed import PackedInput
from minidl.models.url import URLClassifier
from minidl.nn import layer_from_config, serialize
from minidl.ops.shape import stack


class MeanEnsemble(PackedInput, URLClassifier):
    """The mean probability of `members` (URL models, each trained): packed member
    inputs (batch, sum of their widths) -> (batch, 1)."""

    def __init__(self, members, name="mean_ensemble"):
        super().__init__(name)
        self.members = [layer_from_config(member) if isinstance(member, dict) else member for member in members]
        if len(self.members) < 2:
            raise ValueError(f"MeanEnsemble: needs two or more members, got {len(self.members)}")
        for i, member in enumerate(self.members):
            setattr(self, f"member{i}", member)
        self.built = True

    def input_parts(self):
        return [(f"member{i}", member.input_shape[1]) for i, member in enumerate(self.members)]

    def make_tokenizer_from(self, tokenizers):
        """The ensemble's tokeniser from its members' (in the members' order)."""
        encoder = URLEncoder({f"member{i}": tokenizer for i, tokenizer in enumerate(tokenizers)})
        expected = [(name, width) for name, _, width in encoder.layout()]
        if expected != self.input_parts():
            raise ValueError(f"MeanEnsemble: the tokenisers give the parts {expected}, the members read "
                             f"{self.input_parts()}")
        return encoder

    def make_tokenizer(self, texts=None, truncating="post"):
        raise ValueError("MeanEnsemble: its members bring their tokenisers; use make_tokenizer_from(tokenizers)")

    def forward(self, x):
        parts = self.split_input(x)
        outputs = [member(parts[f"member{i}"]) for i, member in enumerate(self.members)]
        return stack(outputs, axis=0).mean(axis=0)

    def get_config(self):
        return {"name": self.name, "members": [serialize(member) for member in self.members]}
