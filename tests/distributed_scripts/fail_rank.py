"""Launched by tests/test_distributed.py as `mpiexec -n 2 python fail_rank.py MODE`: rank 1
fails at the start of the second epoch while rank 0 goes on into the epoch's collectives.
MODE "raise": rank 1 raises an exception; "exit": rank 1's process ends at once (as when
it is killed), with no Python error handling. The job must end, not hang."""
import os
import sys

import numpy as np

import minidl
from minidl import nn
from minidl.distributed import world
from minidl.train import Callback, fit


class FailOnRankOne(Callback):
    def __init__(self, mode):
        self.mode = mode

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1 and world().rank == 1:
            if self.mode == "exit":
                os._exit(3)
            raise RuntimeError("rank 1 cannot read its shard")


def main(mode):
    minidl.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    model = minidl.Sequential([nn.Dense(4, activation="tanh"), nn.Dense(1, activation="sigmoid")])
    fit(model, x, y, epochs=50, batch_size=4, callbacks=[FailOnRankOne(mode)], verbose=0, distributed="auto")
    print("rank", world().rank, "finished training")  # never reached: the job is aborted


if __name__ == "__main__":
    main(sys.argv[1])
