"""Launched by tests/test_distributed.py as `mpiexec -n 2 python root_data_errors.py OUT CASE`:
fit with the data on rank 0 alone goes wrong on rank 0 ("labels": its targets are one
short) or the ranks disagree on who holds the data ("rank 1": only rank 1 passes it).
Every rank must raise a ValueError that says why, none left waiting; each rank writes its
message to OUT/rank<r>.json."""
import json
import sys
from pathlib import Path

import numpy as np

import minidl
from minidl import nn
from minidl.distributed import world
from minidl.train import fit


def main(out, case):
    minidl.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    rank = world().rank
    if case == "labels":
        x, y = (x, y[:-1]) if rank == 0 else (None, None)
    else:
        x, y = (x, y) if rank == 1 else (None, None)
    model = minidl.Sequential([nn.Dense(4, activation="tanh"), nn.Dense(1, activation="sigmoid")])
    try:
        fit(model, x, y, epochs=1, batch_size=4, verbose=0, distributed="auto")
        message = None
    except ValueError as error:
        message = str(error)
    (out / f"rank{rank}.json").write_text(json.dumps(message))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
