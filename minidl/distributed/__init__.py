"""Data-parallel training and batch scoring over MPI (mpi4py), the way Horovod does it.

Start the same program once per process with an MPI launcher:

    mpiexec -n 4 minidl train --arch simple_lstm --data urls.csv --output model.mdl
    mpiexec -n 4 python my_script.py      # whose fit / evaluate / predict pass distributed="auto"

Every rank builds the same model. The data is either on every rank, or on rank 0 alone
(the other ranks pass x=None, y=None): rank 0 reads it, checks it, and sends each rank
only what it works on (`data_on_root`, `run_on_root`, `scatter_steps`, `scatter_blocks`).
`fit(..., distributed=...)`:
- gives every rank rank 0's initial weights and buffers (one broadcast);
- draws each epoch's shuffled order on rank 0, and gives every rank its part of each
  step (`shard_steps`): batch_size samples per rank, so one step sees batch_size * size
  samples, and every sample is used exactly once per epoch; with the data everywhere
  the order is broadcast, with the data on rank 0 rank 0 sends each rank the samples of
  its parts of the epoch's steps, so a rank holds one epoch's share;
- averages the gradients with ONE exchange per step of a flat buffer that holds all
  of them, weighted by each rank's share of the step, so every rank takes the step one
  process would take on the whole global batch; the buffer also carries a stop asked
  by a callback and a diverged step (minidl.train.divergence), so the ranks stop
  together. When every rank runs on one node the step goes through the node's shared
  memory instead (`SharedMemoryStep`): the parameters live there, one copy for all,
  and each rank sums and updates the parameters it owns; else it is one allreduce,
  after which every rank updates every parameter;
- keeps the dropout masks different per rank and reproducible per seed (ranks other
  than 0 reseed their stream from the seeded one and their rank);
- sums the loss and the correct predictions as sample-weighted totals and computes AUC
  from every rank's predictions, so all ranks log the same metrics and take the same
  early-stopping decisions; averages batch normalisation's moving statistics (which each
  rank updates from its own samples) at the end of every epoch;
- lets only rank 0 draw the progress bar and run the callbacks that write files
  (ModelCheckpoint, CSVLogger).
`evaluate` and `predict` with `distributed=` score one contiguous block of rows per rank
and gather the outputs in input order on every rank.

A plain launch never imports mpi4py: "auto" looks for the variables MPI launchers set
(`launch_size`). If a rank raises inside a distributed fit, evaluate or predict, it
prints the error and calls MPI_Abort, which ends every rank of the job rather than
leaving the others waiting forever in a collective. A rank that hangs instead (a dead
lock, a stalled file system) is caught by the `Watchdog`: a rank that has waited
MINIDL_MPI_TIMEOUT seconds (default 300) in one collective says so and ends the job.

On a GPU the gradient buffer is assembled on the device, copied to host memory for the
allreduce and copied back (one transfer each way per step), unless the environment says
the MPI library is CUDA-aware (MINIDL_MPI_CUDA_AWARE=1): mpi4py cannot ask the library.
"""
from minidl.distributed.exchange import SharedMemoryStep, partition
from minidl.distributed.group import ProcessGroup, resolve_group, world
from minidl.distributed.launch import (FOLLOW_ROOT_SECONDS, LAUNCH_ENVIRONMENT, RootFailed, find_mpiexec,
                                       launch_command, launch_rank, launch_size)
from minidl.distributed.sharding import block, shard_steps
from minidl.distributed.watchdog import DEFAULT_TIMEOUT_SECONDS, Watchdog, watchdog_timeout

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS", "FOLLOW_ROOT_SECONDS", "LAUNCH_ENVIRONMENT", "ProcessGroup", "RootFailed",
    "SharedMemoryStep", "Watchdog", "block", "find_mpiexec", "launch_command", "launch_rank", "launch_size",
    "partition", "resolve_group", "shard_steps", "watchdog_timeout", "world",
]
