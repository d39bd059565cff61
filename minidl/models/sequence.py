"""The recurrent sequence classifier that the DGA and botnet models share:

    Embedding(vocab_size, embedding_dim) -> LSTM(units) or GRU(units) -> Dropout(dropout)
    -> Dense(1, sigmoid) for two classes, Dense(classes, softmax) for more

Character (or behaviour-letter) ids (batch, time) in, probabilities out. Padding id 0
is an ordinary embedding row and the recurrent layer runs over the padding too (there is
no masking), so pad before the text ("pre", the tokeniser's default) to keep the last
state next to the real characters.
"""
from minidl.models.mlp import classifier_head
from minidl.models.sequential import Sequential
from minidl.nn import Dropout, Embedding
from minidl.nn.recurrent import GRU, LSTM

#: The recurrent layers a sequence classifier can use, by name.
RECURRENT_CELLS = {"lstm": LSTM, "gru": GRU}


def recurrent_classifier(vocab_size, classes=2, cell="lstm", embedding_dim=128, units=128, dropout=0.5,
                         name=None):
    """The classifier above, built for ids of any length (batch, time): its weights
    exist at once. vocab_size: the number of ids (the tokeniser's `vocab_size`)."""
    if cell not in RECURRENT_CELLS:
        raise ValueError(f"recurrent_classifier: unknown cell {cell!r}: choose one of {', '.join(RECURRENT_CELLS)}")
    if int(vocab_size) != vocab_size or vocab_size < 2:
        raise ValueError(f"recurrent_classifier: vocab_size must be an integer >= 2 (padding and one symbol), "
                         f"got {vocab_size}")
    model = Sequential([
        Embedding(int(vocab_size), int(embedding_dim), name="embedding"),
        RECURRENT_CELLS[cell](int(units), name=cell),
        Dropout(dropout, name="dropout"),
        classifier_head(classes),
    ], name=name or f"{cell}_classifier")
    model.build((None, None))
    return model
