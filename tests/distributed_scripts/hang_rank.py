"""Launched by tests/test_distributed.py as `mpiexec -n 2 python hang_rank.py` with a short
MINIDL_MPI_TIMEOUT: rank 1 stops answering at the start of the second epoch (it sleeps,
as a rank stuck on a stalled file system would) while rank 0 goes on into the epoch's
collectives. The watchdog must end the job, saying so; without it the job would hang."""
import time

import numpy as np

import minidl
from minidl import nn
from minidl.distributed import world
from minidl.train import Callback, fit


class HangOnRankOne(Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1 and world().rank == 1:
            time.sleep(3600)


def main():
    minidl.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    model = minidl.Sequential([nn.Dense(4, activation="tanh"), nn.Dense(1, activation="sigmoid")])
    fit(model, x, y, epochs=50, batch_size=4, callbacks=[HangOnRankOne()], verbose=0, distributed="auto")
    print("rank", world().rank, "finished training")  # never reached: the job is ended


if __name__ == "__main__":
    main()
