"""Launched by tests/test_distributed.py as `mpiexec -n 2 python update_diverges.py OUT`:
rank 1's optimiser step overflows at the third step (as a far too large learning rate
makes it), while rank 0's goes well. On one node each rank updates only the parameters
it owns, so rank 0 could not see it by itself: both ranks must stop with
TrainingDiverged at that same step, without MPI_Abort. Each rank writes OUT/rank<r>.json:
the epoch, the step and the message."""
import json
import sys
from pathlib import Path

import numpy as np

import minidl
from minidl import nn, optim
from minidl.distributed import world
from minidl.train import TrainingDiverged, fit

BATCH_PER_RANK, BAD_STEP = 4, 2  # step 3, counted from 1


class OverflowingSGD(optim.SGD):
    """SGD whose step on rank 1 overflows once, at BAD_STEP."""

    def step(self):
        super().step()
        if world().rank == 1 and self.iterations == BAD_STEP + 1:
            np.float32(3e38) * np.float32(10)  # an overflow, seen by fit's divergence guard


def main(out):
    minidl.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    model = minidl.Sequential([nn.Dense(4, activation="tanh"), nn.Dense(1, activation="sigmoid")])
    try:
        fit(model, x, y, epochs=2, batch_size=BATCH_PER_RANK, optimizer=lambda params: OverflowingSGD(params, 0.1),
            shuffle=False, verbose=0, distributed="auto")
    except TrainingDiverged as error:
        (out / f"rank{world().rank}.json").write_text(json.dumps({"epoch": error.epoch, "step": error.step,
                                                                   "message": str(error)}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
