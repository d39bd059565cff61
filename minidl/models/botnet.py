"""Botnet detection from Stratosphere behavioural letter strings, after Torres, Catania,
Garcia and Garcia Garino, "An Analysis of Recurrent Neural Networks for Botnet
Detection Behavior" (2016).

A connection (4-tuple) becomes one letter per flow, e.g. `2.4.R*R.R.R*a*b*a*b*b*a*R.R*`:
letters a-i / A-I / r-z / R-Z code size, duration and periodicity, the symbols
`. , + * 0` the time since the previous flow. The model reads the letters as ids:

    Embedding(vocab, 32) -> LSTM(64) or GRU(64) -> Dropout(0.5) -> Dense(1, sigmoid)

Torres et al. judged the model on traffic of a botnet it had never seen;
`held_out_subclass_split` does the same with the data sets' subclass labels.
"""
import re

import numpy as np

from minidl.data import split_indices
from minidl.models.sequence import recurrent_classifier

_RUN_NUMBER = re.compile(r"-+\d+$")


def behaviour_classifier(vocab_size, cell="lstm", embedding_dim=32, units=64, dropout=0.5):
    """The botnet-or-normal classifier over letter ids: output (batch, 1), P(botnet).
    cell: "lstm" or "gru"."""
    return recurrent_classifier(vocab_size, classes=2, cell=cell, embedding_dim=embedding_dim, units=units,
                                dropout=dropout, name=f"botnet_{cell}")


def subclass_of(label):
    """A Stratosphere label without its trailing run number, so the connections of one
    kind share a subclass: 'From-Botnet-TCP-HTTP-CC.Cridex-1' -> 'From-Botnet-TCP-HTTP-CC.Cridex',
    'From-Botnet-TCP-Unknown--9' -> 'From-Botnet-TCP-Unknown'. Labels without a number
    (CTU-13's 'Botnet-TCP-Attempt-SPAM') stay as they are."""
    return _RUN_NUMBER.sub("", label.strip())


def held_out_subclass_split(labels, subclasses, test_size=0.2, seed=0):
    """Indices (seen, held_out): every subclass wholly on one side, about `test_size` of
    each class's rows held out, so the held-out part holds botnet *and* normal subclasses
    the model never saw (Torres et al.'s independent test).

    labels (n,) 0/1; subclasses (n,) names. Subclasses are drawn at random (seeded) per
    class (`minidl.data.split_indices` with groups), so a class whose rows are mostly
    one large subclass keeps that subclass on the seen side."""
    labels = np.asarray(labels)
    subclasses = np.asarray(subclasses)
    if labels.shape != subclasses.shape or labels.ndim != 1:
        raise ValueError(f"held_out_subclass_split: labels {labels.shape} and subclasses {subclasses.shape} "
                         "must be two (n,) arrays")
    seen, held_out = [], []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        if len(np.unique(subclasses[rows])) < 2:
            raise ValueError(f"held_out_subclass_split: class {label} has a single subclass; "
                             "nothing can be held out")
        kept, held = split_indices(len(rows), [1 - test_size, test_size], groups=subclasses[rows], seed=seed)
        seen.append(rows[kept])
        held_out.append(rows[held])
    return np.sort(np.concatenate(seen)), np.sort(np.concatenate(held_out))
