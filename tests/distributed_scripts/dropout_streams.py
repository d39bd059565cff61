"""Launched by tests/test_distributed.py as `mpiexec -n 2 python dropout_streams.py OUT SEED`:
a data-parallel fit of a model with dropout and batch normalisation. Each rank writes
OUT/rank<r>.npz (its final state) and OUT/rank<r>.json (three draws of its random
stream after training: the stream its dropout masks came from)."""
import json
import sys
from pathlib import Path

import numpy as np

import minidl
from minidl import backend, nn
from minidl.distributed import world
from minidl.train import fit


def main(out, seed):
    minidl.manual_seed(seed)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(48, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    model = minidl.Sequential([nn.Dense(16, activation="relu"), nn.BatchNormalization(), nn.Dropout(0.5),
                           nn.Dense(1, activation="sigmoid")])
    fit(model, x, y, epochs=2, batch_size=8, verbose=0, distributed="auto")
    rank = world().rank
    np.savez(out / f"rank{rank}.npz", **model.state_dict())
    (out / f"rank{rank}.json").write_text(json.dumps([backend.next_seed() for _ in range(3)]))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
