"""Launched by tests/test_distributed.py as `mpiexec -n 2 python score.py OUT HOLDER`: batch
scoring with predict and evaluate spread over the ranks, the data on every rank (HOLDER
"every") or on rank 0 alone ("root", the others pass None). Each rank writes
OUT/rank<r>.npz (the probabilities it got back) and OUT/rank<r>.json (evaluate's
metrics). The test builds the same model and data from this module."""
import json
import sys
from pathlib import Path

import numpy as np

import minidl
from minidl import nn
from minidl.distributed import world
from minidl.train import evaluate, predict

SEED, ROWS, BATCH = 3, 37, 5  # 37 rows: the ranks' blocks differ in size and batches are ragged


def make_model_and_data():
    minidl.manual_seed(SEED)
    model = minidl.Sequential([nn.Dense(6, activation="tanh"), nn.Dense(1, activation="sigmoid")])
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(ROWS, 3)).astype(np.float32)
    y = (x[:, 1] > 0).astype(np.float32)
    return model, x, y


def main(out, holder):
    model, x, y = make_model_and_data()
    if holder == "root" and world().rank > 0:
        x = y = None
    probabilities = predict(model, x, batch_size=BATCH, distributed="auto")
    scores = evaluate(model, x, y, batch_size=BATCH, distributed="auto")
    rank = world().rank
    np.savez(out / f"rank{rank}.npz", probabilities=probabilities)
    (out / f"rank{rank}.json").write_text(json.dumps(scores))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
