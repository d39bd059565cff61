"""Launched by tests/test_distributed.py as `mpiexec -n 2 python diverge.py OUT`: rank 1's
copy of the data holds a NaN in the sample that the third step gives it, so only rank
1's loss goes wrong there. Both ranks must stop with TrainingDiverged at that same step,
without MPI_Abort. Each rank writes OUT/rank<r>.json: the epoch, the step and the message."""
import json
import sys
from pathlib import Path

import numpy as np

import minidl
from minidl import nn
from minidl.distributed import shard_steps, world
from minidl.train import TrainingDiverged, fit

BATCH_PER_RANK, BAD_STEP = 4, 2  # step 3, counted from 1


def main(out):
    minidl.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    rank = world().rank
    if rank == 1:  # without shuffling, position i of the order is sample i
        (start, _), _ = shard_steps(len(x), BATCH_PER_RANK, 1, 2)[BAD_STEP]
        x[start, 1] = np.nan
    model = minidl.Sequential([nn.Dense(4, activation="tanh"), nn.Dense(1, activation="sigmoid")])
    try:
        fit(model, x, y, epochs=2, batch_size=BATCH_PER_RANK, shuffle=False, verbose=0, distributed="auto")
    except TrainingDiverged as error:
        (out / f"rank{rank}.json").write_text(json.dumps({"epoch": error.epoch, "step": error.step,
                                                          "message": str(error)}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
