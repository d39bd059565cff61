"""Launched by tests/test_distributed.py as `mpiexec -n 2 python train_mlp.py OUT HOLDER`:
a data-parallel fit of a small float64 MLP without dropout beside an embedding bag (whose
gradient is row-sparse, so Adam's update is the lazy one), 16 samples per rank and step,
with validation data, a checkpoint every epoch and a CSV log. HOLDER "every" gives every
rank the data; "root" gives it to rank 0 alone (the others pass None), which sends each
rank its samples. MINIDL_MPI_SHARED_MEMORY=0 (set by the test) makes the ranks exchange
gradients by allreduce rather than through the node's shared memory.

Each rank writes OUT/rank<r>.npz (its final parameters and optimiser state) and OUT/rank<r>.json (its
History and whether its values were all Python floats, the ids of the samples it trained on, per epoch,
how it exchanged gradients, and whether its parameters were its own after fit). The callbacks' paths name
the rank, so the test sees which ranks wrote files. The test builds the same model and
data from this module (make_model, make_data) to train the one-process reference.
"""
import functools
import json
import sys
from pathlib import Path

import numpy as np

import minidl
from minidl import nn, optim
from minidl.distributed import world
from minidl.ops.shape import concatenate
from minidl.train import Callback, CSVLogger, ModelCheckpoint, fit

SEED, EPOCHS, BATCH_PER_RANK = 7, 3, 16
TRAIN, VALIDATION = 80, 20  # 80 = 2 full steps of 32 and a last one of 16: nothing joined
BAG_ROWS, BAG_IDS = 200, 4  # each step uses at most 128 of the 200 rows: lazy and dense Adam differ
OPTIMIZER = functools.partial(optim.Adam, lr=0.05)  # large steps, so a wrong gradient shows


class SampleRecorder(nn.Module):
    """Identity that remembers the id of every sample it sees in training mode (the id
    travels as the first feature, id / IDS_SCALE)."""

    IDS_SCALE = 100.0

    def __init__(self, name=None):
        super().__init__(name)
        self.seen = []

    def forward(self, x):
        if self.training:
            self.seen.append(np.rint(x.numpy()[:, 0] * self.IDS_SCALE).astype(int))
        return x


class EpochIds(Callback):
    """Collects the recorder's ids into one list per epoch."""

    def __init__(self, recorder):
        self.recorder, self.epochs = recorder, []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(np.concatenate(self.recorder.seen).tolist())
        self.recorder.seen = []


class FeaturesAndBag(nn.Module):
    """The id and the two features through Dense(8, tanh), beside the mean of the
    embedding-bag rows of the BAG_IDS ids in the last columns."""

    def __init__(self, name=None):
        super().__init__(name)
        self.dense = nn.Dense(8, activation="tanh")
        self.bag = nn.EmbeddingBag(BAG_ROWS, 3, mode="mean")

    def forward(self, x):
        ids = np.rint(x.numpy()[:, 3:]).astype(np.int64)
        return concatenate([self.dense(x[:, :3]), self.bag(ids)], axis=-1)


def make_data():
    """(x, y, x_val, y_val): two noisy features after the id column, a linear rule, then
    BAG_IDS ids of bag rows."""
    rng = np.random.default_rng(0)
    n = TRAIN + VALIDATION
    features = rng.normal(size=(n, 2))
    y = (features[:, 0] + 0.5 * features[:, 1] + rng.normal(0, 0.5, n) > 0).astype(np.float64)
    x = np.column_stack([np.arange(n) / SampleRecorder.IDS_SCALE, features, rng.integers(0, BAG_ROWS, (n, BAG_IDS))])
    return x[:TRAIN], y[:TRAIN], x[TRAIN:], y[TRAIN:]


def make_model():
    """(model, recorder), float64, weights from SEED; call with the default dtype float64."""
    minidl.manual_seed(SEED)
    recorder = SampleRecorder()
    model = minidl.Sequential([recorder, FeaturesAndBag(), nn.Dense(1, activation="sigmoid")])
    model.build((None, 3 + BAG_IDS))
    return model, recorder


def main(out, holder):
    minidl.set_default_dtype(np.float64)
    model, recorder = make_model()
    rank = world().rank
    x, y, x_val, y_val = make_data() if holder == "every" or rank == 0 else (None, None, None, None)
    ids = EpochIds(recorder)
    callbacks = [ids, ModelCheckpoint(out / f"checkpoint-rank{rank}-{{epoch}}.mdl", save_best_only=False),
                 CSVLogger(out / f"log-rank{rank}.csv")]
    history = fit(model, x, y, epochs=EPOCHS, batch_size=BATCH_PER_RANK, optimizer=OPTIMIZER,
                  validation_data=None if x_val is None else (x_val, y_val), callbacks=callbacks, verbose=2,
                  distributed="auto")
    np.savez(out / f"rank{rank}.npz", *[p.numpy() for p in model.parameters()],
             **{f"optimizer {key}": value for key, value in ids.optimizer.state_dict().items()})
    exchange = "shared memory" if world()._shared is not None else "allreduce"
    # after fit the parameters are the rank's own again: rank 0 changing its copy leaves rank 1's alone
    before = [p.numpy().copy() for p in model.parameters()]
    world().comm.Barrier()
    if rank == 0:
        for p in model.parameters():
            p.data += 1.0
    world().comm.Barrier()
    private = rank == 0 or all(np.array_equal(p.numpy(), value) for p, value in zip(model.parameters(), before))
    floats = all(type(value) is float for values in history.values() for value in values)
    (out / f"rank{rank}.json").write_text(json.dumps({"history": dict(history), "ids": ids.epochs, "floats": floats,
                                                      "exchange": exchange, "private": private}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
