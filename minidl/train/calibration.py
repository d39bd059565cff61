"""The decision threshold of a binary model: chosen on a validation part for a target
false-positive rate, stored in the model file, and read back for scoring.

    chosen = calibrate_threshold(model, (x_val, y_val), target_fpr=1e-3)
    chosen.threshold, chosen.message
"""
from typing import NamedTuple

import numpy as np

from minidl.distributed import resolve_group
from minidl.train import metrics
from minidl.train.loop import predict

#: Without a threshold of its own a model calls a URL malicious above this.
DEFAULT_THRESHOLD = 0.5


class Calibration(NamedTuple):
    threshold: float
    reached: bool     # whether the target rate was resolved (on rank 0 under MPI)
    message: str      # what was done, in one line, for a person


def calibrate_threshold(model, validation, target_fpr, rows=None):
    """The smallest score above which at most `target_fpr` of the validation part's
    benign samples lie. It stays 0.5, and the message says why, without a validation
    part, with one class only, or with fewer benign samples than 1 / target_fpr (the
    threshold would only be the highest benign score).

    validation: (x, y) or None. Under MPI the part is on rank 0 (None elsewhere, with
    `rows` its size on every rank): every rank scores its share and gets rank 0's
    threshold."""
    rows = rows if rows is not None else (0 if validation is None else len(validation[1]))
    if not rows:
        return Calibration(DEFAULT_THRESHOLD, False,
                           "no validation part: the decision threshold stays 0.5 (--validation-split calibrates it)")
    group = resolve_group("auto")
    scores = predict(model, None if validation is None else validation[0], distributed="auto").reshape(-1)
    threshold, reached, message = DEFAULT_THRESHOLD, False, ""
    if validation is not None:
        benign = int(np.count_nonzero(validation[1] == 0))
        if benign in (0, len(validation[1])):
            message = "the validation part holds one class: the decision threshold stays 0.5"
        elif benign * target_fpr < 1:
            message = (f"the validation part's {benign} benign URLs cannot resolve a false-positive rate of "
                       f"{target_fpr:g} (it takes {int(np.ceil(1 / target_fpr))}): the decision threshold "
                       "stays 0.5")
        else:
            threshold, reached = metrics.threshold_at_fpr(validation[1], scores, target_fpr), True
            message = (f"decision threshold {threshold:.6g}: at most {target_fpr:g} of the validation part's "
                       f"{benign} benign URLs above it, {metrics.tpr_at_fpr(validation[1], scores, target_fpr):.4f}"
                       " of its malicious ones")
    if group is not None:
        threshold = float(group.broadcast(np.array([threshold]))[0])
    return Calibration(threshold, reached, message)


def stored_threshold(extra):
    """(threshold, where it comes from) for a model file's `extra`: the threshold
    `minidl train` stored with the false-positive rate it was chosen for, else 0.5."""
    if extra.get("threshold") is None:
        return DEFAULT_THRESHOLD, "default"
    target = extra.get("target_fpr")
    return float(extra["threshold"]), "stored" + (f": FPR {target:g} on the validation part" if target else "")
