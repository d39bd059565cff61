"""Domain Generation Algorithm (DGA) detection from the characters of a domain name,
after Woodbridge, Anderson, Ahuja and Grant, "Predicting Domain Generation Algorithms
with Long Short-Term Memory Networks" (2016):

    Embedding(vocab, 128) -> LSTM(128) -> Dropout(0.5) -> Dense(1, sigmoid)      DGA or not
    the same with Dense(families, softmax)                                       which family

trained with Adam on (binary / sparse categorical) cross-entropy. The input is the
domain's characters as ids, padded in front to a fixed length (`CharTokenizer`).
"""
from minidl.models.sequence import recurrent_classifier


def dga_lstm(vocab_size, classes=2, embedding_dim=128, units=128, dropout=0.5):
    """Woodbridge et al.'s LSTM: classes=2 gives the binary detector (output (batch, 1),
    P(DGA)), classes=k > 2 the multi-class head over k families (output (batch, k))."""
    name = "dga_lstm" if classes == 2 else "dga_family_lstm"
    return recurrent_classifier(vocab_size, classes=classes, cell="lstm", embedding_dim=embedding_dim,
                                units=units, dropout=dropout, name=name)


def domain_name(domain, keep_tld=False):
    """The part of `domain` a DGA generated: lower-cased, the last label (the top-level
    domain: `.com`, `.ru`) removed unless keep_tld. The TLD is left out by default
    because in the public lists it tells the sources apart rather than the algorithms
    (in dga-andrewaeva pushdo uses only .ru and ramdo only .org)."""
    domain = domain.strip().lower().rstrip(".")
    if keep_tld or "." not in domain:
        return domain
    return domain.rsplit(".", 1)[0]
