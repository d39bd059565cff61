"""Launched by tests/test_distributed.py as `mpiexec -n 2 python stop_on_one_rank.py OUT`: a
callback on rank 1 alone asks to stop training after the third step of the first epoch.
Both ranks must stop after that same step (no rank left waiting in a collective) with the
same weights. Each rank writes OUT/rank<r>.npz (its parameters) and OUT/rank<r>.json
(its optimiser steps and epochs run)."""
import json
import sys
from pathlib import Path

import numpy as np

import minidl
from minidl import nn, optim
from minidl.distributed import world
from minidl.train import Callback, fit


class StopOnRankOne(Callback):
    def on_batch_end(self, batch, logs=None):
        if batch == 2 and world().rank == 1:
            self.model.stop_training = True


def main(out):
    minidl.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    model = minidl.Sequential([nn.Dense(4, activation="tanh"), nn.Dense(1, activation="sigmoid")])
    model.build((None, 3))
    optimizer = optim.Adam(model.parameters())
    history = fit(model, x, y, epochs=3, batch_size=4, optimizer=optimizer, callbacks=[StopOnRankOne()],
                  verbose=0, distributed="auto")
    rank = world().rank
    np.savez(out / f"rank{rank}.npz", *[p.numpy() for p in model.parameters()])
    (out / f"rank{rank}.json").write_text(json.dumps({"steps": optimizer.iterations, "epochs": history.epochs}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
