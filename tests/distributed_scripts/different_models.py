"""Launched by tests/test_distributed.py as `mpiexec -n 2 python different_models.py OUT`:
rank 1 builds a wider hidden layer than rank 0. fit must refuse on both ranks, before
any step, with the same ValueError (not hang, not abort). Each rank writes
OUT/rank<r>.json with the message."""
import json
import sys
from pathlib import Path

import numpy as np

import minidl
from minidl import nn
from minidl.distributed import world
from minidl.train import fit


def main(out):
    minidl.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    rank = world().rank
    model = minidl.Sequential([nn.Dense(4 + rank, activation="tanh"), nn.Dense(1, activation="sigmoid")])
    try:
        fit(model, x, y, epochs=1, batch_size=4, verbose=0, distributed="auto")
    except ValueError as error:
        (out / f"rank{rank}.json").write_text(json.dumps({"message": str(error)}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
