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
import contextlib
import os
import shutil
import sys
import threading
import time
import traceback

import numpy as np

from minidl import backend
from minidl.sparse import IndexedSlices

#: Variables that MPI launchers set in every process they start, holding the number of
#: processes: Open MPI, MPICH and Intel MPI (Hydra's PMI), MVAPICH; MPICH's local count last.
SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")
#: Those holding this process' rank in the whole launch (PMIx's too; never a rank on the node).
RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK", "PMIX_RANK")
#: Seconds a failing rank waits, after printing its error, before ending the job.
ABORT_GRACE_SECONDS = 0.5
#: Seconds a rank waits inside one collective operation for the others before the
#: watchdog ends the job; MINIDL_MPI_TIMEOUT overrides it (0 turns the watchdog off).
DEFAULT_TIMEOUT_SECONDS = 300.0
TIMEOUT_VARIABLE = "MINIDL_MPI_TIMEOUT"
#: Set to 0 to exchange gradients by allreduce even when every rank is on one node.
SHARED_MEMORY_VARIABLE = "MINIDL_MPI_SHARED_MEMORY"
#: Seconds a rank that learned of rank 0's failure (RootFailed) lets rank 0 report it
#: before ending: the launcher ends the job, and may drop rank 0's message, once one
#: rank has exited with an error.
FOLLOW_ROOT_SECONDS = 2.0

_world = None  # the ProcessGroup of MPI_COMM_WORLD, made on first use


class RootFailed(ValueError):
    """Raised on the ranks other than 0 when rank 0 failed in a step it does alone for
    every rank (reading the data); rank 0 raises its own error and reports it."""


# ------------------------------------------------------------------ the launch
def _first_integer(names, environ):
    for name in names:
        value = environ.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return None


def launch_size(environ=None):
    """The number of processes the MPI launcher started, read from its variables
    (no MPI call); 1 for a plain launch."""
    size = _first_integer(SIZE_VARIABLES, os.environ if environ is None else environ)
    return 1 if size is None else size


def launch_rank(environ=None):
    """This process' rank, read from the launcher's variables (no MPI call); 0 for a
    plain launch. Lets a program quieten ranks other than 0 before MPI starts."""
    rank = _first_integer(RANK_VARIABLES, os.environ if environ is None else environ)
    return 0 if rank is None else rank


#: Settings for a launch on one small machine as root: Open MPI refuses root and more
#: processes than cores unless told (MPICH needs neither), and one thread per rank keeps
#: ranks from competing for the same cores.
LAUNCH_ENVIRONMENT = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_rmaps_base_oversubscribe": "1", "PRTE_MCA_rmaps_default_mapping_policy": ":oversubscribe",
    "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
}


def find_mpiexec():
    """The mpiexec beside this Python (where the `mpi` extra's MPICH wheel puts it) or on
    PATH; None when there is none."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.access(beside, os.X_OK) else shutil.which("mpiexec")


def launch_command(processes, argv):
    """(argv, environment) that run `argv` in `processes` processes under mpiexec, with
    LAUNCH_ENVIRONMENT added to this process' environment (tests and benchmarks)."""
    mpiexec = find_mpiexec()
    if mpiexec is None:
        raise FileNotFoundError('no mpiexec beside this Python or on PATH: pip install -e ".[mpi]"')
    return [mpiexec, "-n", str(int(processes)), *argv], {**os.environ, **LAUNCH_ENVIRONMENT}


def _mpi():
    """mpi4py's MPI module (importing it starts MPI), with an error that says what to install."""
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError(f"minidl.distributed needs mpi4py and an MPI library ({error}): "
                          'pip install -e ".[mpi]" installs both') from error
    return MPI


def world():
    """The ProcessGroup of every process of this launch (MPI_COMM_WORLD)."""
    global _world
    if _world is None:
        _world = ProcessGroup()
    return _world


def resolve_group(distributed):
    """The `distributed` argument of fit, evaluate and predict -> a ProcessGroup or None.

    None or False: this process alone, the plain behaviour. "auto": every process of
    the launch when an MPI launcher started more than one, else None. A ProcessGroup:
    itself (e.g. one made over a sub-communicator)."""
    if distributed is None or distributed is False:
        return None
    if isinstance(distributed, ProcessGroup):
        return distributed
    if distributed == "auto":
        return world() if launch_size() > 1 else None
    raise ValueError(f"distributed must be None, 'auto' or a ProcessGroup, got {distributed!r}")


# ------------------------------------------------------------------ sharding
def block(start, stop, rank, size):
    """(start, stop) of rank's contiguous part of [start, stop) cut in `size` parts
    whose lengths differ by at most one (the first ranks take the extra samples)."""
    count, extra = divmod(stop - start, size)
    first = start + rank * count + min(rank, extra)
    return first, first + count + (1 if rank < extra else 0)


def shard_steps(n, batch_size, rank, size):
    """rank's part of each optimiser step of an epoch over n samples, as a list of
    ((start, stop) into the epoch's order, samples in the whole step).

    A step takes batch_size samples per rank (batch_size * size in all); the last,
    shorter one is cut as evenly as possible. A last step with fewer than two samples
    per rank joins the one before it: fit's rule that batch normalisation needs two
    samples, which it is exactly when size is 1. Every position of the order falls in
    exactly one rank's part of one step."""
    if n < size:
        raise ValueError(f"fit: {n} training samples cannot be shared among {size} processes")
    global_batch = batch_size * size
    bounds = [(start, min(start + global_batch, n)) for start in range(0, n, global_batch)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < 2 * size:
        bounds[-2:] = [(bounds[-2][0], n)]
    return [(block(start, stop, rank, size), stop - start) for start, stop in bounds]


# ------------------------------------------------------------------ the watchdog
def watchdog_timeout(environ=None):
    """The watchdog's timeout in seconds: MINIDL_MPI_TIMEOUT, else DEFAULT_TIMEOUT_SECONDS;
    0 means no watchdog."""
    text = (os.environ if environ is None else environ).get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also NaN
        raise ValueError(f"{TIMEOUT_VARIABLE}={text!r}: expected a number of seconds >= 0 (0 turns the watchdog off)")
    return seconds


class Watchdog:
    """A daemon thread that calls `on_timeout(what, seconds)` once this process has
    waited inside one `waiting(what)` block for `timeout` seconds: a collective that
    another rank never joins because it hangs (a dead lock, a stalled file system) rather
    than fails. MPI calls release the GIL, so the thread runs while the main thread
    blocks in one; it wakes a few times per timeout, not per collective."""

    def __init__(self, timeout, on_timeout):
        self.timeout, self.on_timeout = float(timeout), on_timeout
        self._waiting = None  # (what, since) while inside a block
        self._thread = None

    @contextlib.contextmanager
    def waiting(self, what):
        if not self.timeout:
            yield
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="minidl-mpi-watchdog", daemon=True)
            self._thread.start()
        self._waiting = (what, time.monotonic())
        try:
            yield
        finally:
            self._waiting = None

    def _watch(self):
        interval = min(1.0, self.timeout / 4)
        while True:
            time.sleep(interval)
            waiting = self._waiting
            if waiting is not None and time.monotonic() - waiting[1] >= self.timeout:
                self.on_timeout(waiting[0], time.monotonic() - waiting[1])
                return


# ---------------------------------------------------------- the gradient exchange
def _pack_gradients(flat, params, share, flags, kept=()):
    """Fill `flat` with share * each parameter's gradient (zeros where it has none; a
    row-sparse one, IndexedSlices, written into its rows), then a 1 per parameter that
    has one, then a 1 per parameter whose gradient is row-sparse, then the flags (one
    pass per gradient, no temporaries; a plain copy when share is 1); returns it. The
    parts of the parameters whose indices are in `kept` are left as they are (their
    flags are set)."""
    xp = backend.get_array_module(flat)
    total, n = sum(p.size for p in params), len(params)
    offset = 0
    for i, p in enumerate(params):
        part, offset = flat[offset:offset + p.size], offset + p.size
        sparse = isinstance(p.grad, IndexedSlices)
        flat[total + i], flat[total + n + i] = p.grad is not None, sparse
        if i in kept:
            continue
        if p.grad is None:
            part[...] = 0
        elif sparse:
            part[...] = 0
            part.reshape(p.shape)[p.grad.indices] = p.grad.values if share == 1 else p.grad.values * share
        elif share == 1:
            part[...] = p.grad.reshape(-1)
        else:
            xp.multiply(p.grad.reshape(-1), share, out=part)
    for i, flag in enumerate(flags):
        flat[total + 2 * n + i] = bool(flag)
    return flat


def _summed(param, share, parts):
    """share * param's own gradient plus the other ranks' `parts` of it (added in the
    order given; only the owner computes it, so no other rank need match its bits), as
    param's gradient: written over its own gradient array when it has one (whose memory
    the allocator keeps warm: a fresh one costs page faults), in one pass when share is 1."""
    grad = param.grad
    if grad is None:
        grad = np.zeros(param.shape, param.dtype)
    elif not (isinstance(grad, np.ndarray) and grad.dtype == param.dtype and grad.flags.c_contiguous):
        grad = np.array(grad, dtype=param.dtype, order="C")
    out = grad.reshape(-1)
    if share != 1:
        np.multiply(out, share, out=out)
    for part in parts:
        np.add(out, part, out=out, casting="same_kind")
    return grad


def _exchanged(summed, ranks, sparse_ranks):
    """A parameter's gradient after the exchange, from the sum `summed` (its shape) and
    how many ranks had a gradient of it and how many of those a row-sparse one: None
    when no rank had one; when every rank's was row-sparse, IndexedSlices over the rows
    of the sum that are not all zeros (the rows some rank's batch used, so the lazy
    optimisers update the rows one process would; a used row whose gradients cancel to
    exactly zero in every column is the exception), else the dense sum."""
    if not ranks:
        return None
    return summed if sparse_ranks < ranks else IndexedSlices.of_nonzero_rows(summed)


def partition(sizes, ranks):
    """The rank that updates each parameter, from their sizes: the largest first, each
    to the rank with the fewest elements so far (ties: the lower index, the lower rank),
    so every rank computes the same split and the ranks' shares are near equal."""
    load, owners = [0] * ranks, [0] * len(sizes)
    for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        owners[i] = min(range(ranks), key=load.__getitem__)
        load[owners[i]] += sizes[i]
    return owners


class SharedMemoryStep:
    """A data-parallel step of ranks that all run on one node, through one MPI
    shared-memory window: the parameters themselves live in the window, one copy that
    every rank reads, and the update is split among the ranks (ZeRO's stage 1,
    Rajbhandari et al. 2020): each parameter has one owner (`partition`), the one rank
    that sums its gradient and updates it, in place, for all.

    The window holds, per rank, a gradient slot (the flat buffer of
    ProcessGroup.average_gradients) and a flag, and once the parameters. A step: each
    rank fills its gradient slot with the gradients of the parameters it does not own;
    the ranks meet at a barrier; each adds the other ranks' slots, in rank order, to its
    own gradients of the parameters it owns, in place (`reduce`; with fit's gradients,
    already weighted by the backward pass, one pass over them); the optimiser updates
    those; the ranks meet again (`updated`), and the next forward pass reads the new
    values. Between the two barriers no rank reads a
    parameter, and a rank writes its gradient slot again only after the second, which
    no rank passes before it has read every slot.

    Why: MPICH's allreduce over shared memory passes conv_fully's 8.9 MB buffer through
    a temporary it allocates per call (about 3,000 page faults and 5.7 ms a step on two
    ranks here), and with replicas every rank then updates every parameter, at the same
    moment as the other: Adam over 2.2 M parameters is memory-bound and took 2.4 ms a
    step on each of two ranks against 1.4 ms alone. Here each of two ranks sums and
    updates half of the parameters, and both read one copy of the weights."""

    def __init__(self, group, sizes, dtype, flags):
        self.group, self.sizes, self.dtype = group, tuple(sizes), np.dtype(dtype)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self.total, self.flags = int(self.offsets[-1]), int(flags)
        self.owners = partition(self.sizes, group.size)
        self.owned = frozenset(i for i, owner in enumerate(self.owners) if owner == group.rank)
        slot = self.total + 2 * len(self.sizes) + self.flags + 1  # gradients, two counts, flags; the update's flag
        itemsize = self.dtype.itemsize
        own = slot + (self.total if group.rank == 0 else 0)  # rank 0's part also holds the parameters
        self.window = group.mpi.Win.Allocate_shared(own * itemsize, itemsize, comm=group.comm)
        self.window.Lock_all(group.mpi.MODE_NOCHECK)  # one passive epoch for the window's life
        memory = [np.frombuffer(self.window.Shared_query(rank)[0], self.dtype, slot + (self.total if rank == 0 else 0))
                  for rank in range(group.size)]
        self.slots = [part[:slot] for part in memory]
        self.parameters = memory[0][slot:]
        self.bound, self.views = [], []  # the parameters in the window and their arrays there

    def serves(self, params, dtype, flags):
        return (tuple(p.size for p in params), np.dtype(dtype), int(flags)) == (self.sizes, self.dtype, self.flags)

    def meet(self, what):
        """A barrier (watched) that also makes each rank's stores visible to the others."""
        self.window.Sync()  # this rank's stores, visible to the others
        with self.group.watchdog.waiting(what):
            self.group.comm.Barrier()
        self.window.Sync()  # and theirs to this rank

    def _part(self, array, i):
        return array[self.offsets[i]:self.offsets[i + 1]]

    def bind(self, params):
        """Move the parameters into the window, rank 0's values, unless they are there
        already: at the first step of every fit (whose start loads rank 0's weights into
        fresh arrays on every rank, so every rank binds at the same step)."""
        if len(self.bound) == len(params) and all(
                p is bound and p.data is view for p, bound, view in zip(params, self.bound, self.views)):
            return
        self.meet("a parameter exchange")  # no rank still reads the window's parameters
        if self.group.rank == 0:
            for i, p in enumerate(params):
                self._part(self.parameters, i).reshape(p.shape)[...] = p.data
        self.meet("a parameter exchange")
        self.bound = list(params)
        self.views = [self._part(self.parameters, i).reshape(p.shape) for i, p in enumerate(params)]
        for p, view in zip(params, self.views):
            p.data = view

    def release(self):
        """Give the bound parameters private copies of their values again (end of fit, a
        new layout): the model then no longer shares memory that another process may
        write, or that is freed."""
        for p, view in zip(self.bound, self.views):
            if p.data is view:
                p.data = view.copy()
        self.bound, self.views = [], []

    def reduce(self, params, share, flags):
        """Each parameter this rank owns gets the summed share-weighted gradient of every
        rank, the others None; returns how many ranks raised each flag."""
        self.bind(params)
        rank = self.group.rank
        _pack_gradients(self.slots[rank][:-1], params, share, flags, kept=self.owned)  # no rank reads those
        self.meet("a gradient exchange")
        counts = sum(slot[self.total:-1] for slot in self.slots)
        others, n = [slot for r, slot in enumerate(self.slots) if r != rank], len(params)
        for i, p in enumerate(params):
            owned = i in self.owned and counts[i]
            p.grad = _exchanged(_summed(p, share, [self._part(slot, i) for slot in others]), counts[i],
                                counts[n + i]) if owned else None
        return counts[2 * n:]

    def updated(self, problem):
        """After the optimiser's step: the ranks meet, so every rank reads every new value
        from here on; returns whether any rank raised `problem`."""
        self.slots[self.group.rank][-1] = bool(problem)
        self.meet("a parameter update")
        return any(bool(slot[-1]) for slot in self.slots)

    def share_slots(self, optimizer):
        """Copy the optimiser's slots of the parameters each rank owns (Adam's moments) to
        every rank, through the gradient slots, which no step uses meanwhile."""
        params = optimizer.params
        for name in optimizer.slot_names:
            slots = optimizer.slots(name)
            self.meet("an optimiser state exchange")  # every rank done reading the gradient slots
            own = self.slots[self.group.rank]
            for i, owner in enumerate(self.owners):
                if owner == self.group.rank:
                    if slots[i] is not None:
                        self._part(own, i)[...] = slots[i].reshape(-1)
                    own[self.total + i] = slots[i] is not None
            self.meet("an optimiser state exchange")
            for i, owner in enumerate(self.owners):
                if owner != self.group.rank:
                    source = self.slots[owner]
                    values = self._part(source, i).reshape(params[i].shape)
                    if not source[self.total + i]:
                        slots[i] = None
                    elif slots[i] is None:
                        slots[i] = values.astype(params[i].dtype)
                    else:
                        slots[i][...] = values
        self.meet("an optimiser state exchange")  # done reading before the next step writes

    def free(self):
        """Release the window (collective)."""
        self.window.Unlock_all()
        self.window.Free()


# ------------------------------------------------------------------ the group
class ProcessGroup:
    """The processes of one MPI communicator (default MPI_COMM_WORLD) and the collective
    steps that data-parallel training takes with them. Every method is collective:
    each rank must call it, in the same order.

    timeout: seconds a rank may wait in one collective for the others before the
    watchdog prints which rank waited and where, and ends the job (default
    MINIDL_MPI_TIMEOUT, else DEFAULT_TIMEOUT_SECONDS; 0: wait forever)."""

    def __init__(self, comm=None, timeout=None):
        self.mpi = _mpi()
        self.comm = self.mpi.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.watchdog = Watchdog(watchdog_timeout() if timeout is None else timeout, self._unanswered)
        # mpi4py exposes neither MPIX_Query_cuda_support nor MPIX_GPU_query_support,
        # so whether the library reads device memory is the user's to say.
        self.cuda_aware = os.environ.get("MINIDL_MPI_CUDA_AWARE", "") == "1"
        self._one_node = None  # whether every rank runs on this node, asked on first use
        self._shared = None  # the SharedMemoryStep of the last layout exchanged
        self._step = None  # the one the current step uses (None: an allreduce)

    @property
    def is_root(self):
        """True on rank 0, the rank that prints and writes files."""
        return self.rank == 0

    def __repr__(self):
        return f"ProcessGroup(rank={self.rank}, size={self.size})"

    # -------------------------------------------------------------- collectives
    def _allreduce_sum(self, array):
        """The element-wise sum of `array` over the ranks, on every rank."""
        if backend.is_cupy_array(array):
            if not self.cuda_aware:  # through host memory: one copy each way
                host = array.get()
                with self.watchdog.waiting("an allreduce"):
                    self.comm.Allreduce(self.mpi.IN_PLACE, host, op=self.mpi.SUM)
                return backend.get_array_module(array).asarray(host)
            # MPI reads the buffer outside CuPy's stream: let pending kernels finish first
            backend.get_array_module(array).cuda.get_current_stream().synchronize()
        with self.watchdog.waiting("an allreduce"):
            self.comm.Allreduce(self.mpi.IN_PLACE, array, op=self.mpi.SUM)
        return array

    def sum(self, values):
        """The sums over the ranks of a few numbers, as a float64 NumPy array."""
        return self._allreduce_sum(np.array(values, dtype=np.float64))

    def any(self, flag):
        """True on every rank when `flag` is true on any rank."""
        return bool(self.sum([bool(flag)])[0] > 0)

    def broadcast(self, array):
        """Rank 0's NumPy `array` (same shape and dtype on every rank), on every rank."""
        array = np.ascontiguousarray(array)
        with self.watchdog.waiting("a broadcast"):
            self.comm.Bcast(array, root=0)
        return array

    def gather(self, arrays):
        """Every rank's list of arrays, concatenated in rank order, on every rank."""
        with self.watchdog.waiting("an allgather"):
            parts = self.comm.allgather(list(arrays))
        return [array for part in parts for array in part]

    def scatter(self, items=None, patient=False):
        """Item r of rank 0's list of `size` items (any picklable data; None on the
        other ranks), on rank r. patient: wait for rank 0 without the watchdog, for
        when rank 0 reads an input that may be slow to come, such as a pipe."""
        if patient:
            return self.comm.scatter(items, root=0)
        with self.watchdog.waiting("a scatter"):
            return self.comm.scatter(items, root=0)

    def gather_to_root(self, item):
        """Every rank's `item`, in rank order, as a list on rank 0; None on the others."""
        with self.watchdog.waiting("a gather"):
            return self.comm.gather(item, root=0)

    # ------------------------------------------------------- data on rank 0 only
    def data_on_root(self, x):
        """True when rank 0 alone passed data (`x` None on the others): rank 0 read it and
        sends each rank its share; False when every rank holds its own copy. Any other
        combination is a ValueError on every rank."""
        with self.watchdog.waiting("an allgather"):
            held = self.comm.allgather(x is not None)
        if all(held):
            return False
        if held[0] and not any(held[1:]):
            return True
        missing = [rank for rank, holds in enumerate(held) if not holds]
        raise ValueError(f"distributed: ranks {missing} passed no data and the others did; pass the data on "
                         "every rank, or on rank 0 alone (x=None, y=None elsewhere)")

    def run_on_root(self, prepare):
        """Call `prepare()` on rank 0 alone; it returns (value, summary). Every rank gets
        (value on rank 0, None elsewhere; the summary, broadcast). An error on rank 0 is
        raised there and as RootFailed on the other ranks, so none is left waiting."""
        value, message = None, None
        if self.is_root:
            try:
                value, summary = prepare()
                message = ("ok", summary)
            except Exception as error:  # noqa: BLE001 - passed on to every rank
                message = ("error", str(error))
                failure = error
        with self.watchdog.waiting("a broadcast from rank 0"):
            kind, content = self.comm.bcast(message, root=0)
        if kind == "error":
            if self.is_root:
                raise failure
            raise RootFailed(f"rank 0: {content}")
        return value, content

    def scatter_blocks(self, parts=None):
        """This rank's contiguous block of rows (`block`) of each of rank 0's `parts`
        (arrays of one length, None in place of a missing one; None on the other ranks)."""
        pieces = None
        if self.is_root:
            n = len(next(part for part in parts if part is not None))
            pieces = [[None if part is None else part[slice(*block(0, n, rank, self.size))] for part in parts]
                      for rank in range(self.size)]
        return self.scatter(pieces)

    def scatter_steps(self, order, n, batch_size, parts=None):
        """For one epoch with the data on rank 0: each rank gets the samples of its part
        of every step (`shard_steps`), in step order, from rank 0's `parts` (arrays
        indexed by sample, None in place of a missing one; None on the other ranks) and
        the epoch's `order` (used on rank 0 only). Returns (this rank's parts, its steps
        as ((start, stop) into them, samples in the whole step))."""
        plan = shard_steps(n, batch_size, self.rank, self.size)
        pieces = None
        if self.is_root:
            pieces = []
            for rank in range(self.size):
                rows = np.concatenate([order[start:stop] for (start, stop), _ in
                                       shard_steps(n, batch_size, rank, self.size)])
                pieces.append([None if part is None else part[rows] for part in parts])
        local = self.scatter(pieces)
        ends = np.cumsum([stop - start for (start, stop), _ in plan])
        return local, [((int(end - (stop - start)), int(end)), size)
                       for end, ((start, stop), size) in zip(ends, plan)]

    # ---------------------------------------------------------------- training
    def prepare(self, model):
        """Before training: every rank gets rank 0's weights and buffers, and ranks other
        than 0 reseed their random stream (dropout masks) from it and their rank, so
        their masks differ from rank 0's and repeat with the seed. The arrays go as raw
        buffers into each rank's own (a fourth of the time of pickling conv_fully's
        8.9 MB), after a check that every rank built the same names, shapes and dtypes."""
        state = model.state_dict()
        layout = [(name, value.shape, value.dtype.str) for name, value in state.items()]
        with self.watchdog.waiting("the broadcast of the initial weights"):
            root_layout = self.comm.bcast(layout if self.is_root else None, root=0)
        if self.any(layout != root_layout):
            raise ValueError("distributed: the ranks built different models (parameter and buffer names, shapes or "
                             "dtypes differ from rank 0's); every rank must build the same model")
        with self.watchdog.waiting("the broadcast of the initial weights"):
            for value in state.values():
                self.comm.Bcast(value, root=0)
        model.load_state_dict(state)
        if self.rank:
            backend.manual_seed((backend.next_seed() + self.rank) % 2**63)

    def average_gradients(self, params, share, flags=()):
        """Give the parameters the gradient of the whole step's mean loss, in ONE exchange
        of a flat buffer; returns, for each of `flags`, whether any rank raised it (fit's:
        a stop asked after the previous step, a diverged step).

        When each rank's .grad is that of its own mean loss, sum_r share_r * grad_r, with
        share_r = rank r's samples / the step's samples, is the gradient one process
        would get on the global batch. `share` is that factor; fit starts each rank's
        backward pass from share_r instead, so its gradients come weighted and it passes
        1, and the exchange only adds. The buffer also carries, per parameter, how many
        ranks had a gradient (one no rank used keeps grad None, which optimisers skip)
        and how many a row-sparse one (an embedding bag's IndexedSlices: it is summed as
        a dense matrix and comes back as the rows some rank used, so the optimiser's lazy
        update touches the rows one process would), and in its last elements how many
        ranks raised each flag.

        When every rank runs on one node (NumPy arrays, one dtype) the step goes through
        the node's shared memory (`SharedMemoryStep`): the parameters move into it at
        the first step, each rank gets the gradients only of the parameters it owns (the
        others' grad is None, so the optimiser leaves them to their owners), and
        `share_updates` after the optimiser's step makes every new value visible to
        every rank. Otherwise (MINIDL_MPI_SHARED_MEMORY=0, several nodes, CuPy) it is
        one allreduce, after which every rank updates every parameter."""
        xp = backend.get_array_module(*(p.data for p in params))
        dtype = np.result_type(*(p.dtype for p in params))
        self._step = self._shared_step(params, dtype, len(flags)) if xp is np else None
        if self._step is not None:
            return tuple(bool(count > 0) for count in self._step.reduce(params, share, flags))
        total, n = sum(p.size for p in params), len(params)
        flat = _pack_gradients(xp.empty(total + 2 * n + len(flags), dtype=dtype), params, share, flags)
        flat = self._allreduce_sum(flat)
        counts = backend.to_numpy(flat[total:])
        offset = 0
        for i, p in enumerate(params):  # views out of the reduced buffer: no copies back
            summed = flat[offset:offset + p.size].reshape(p.shape).astype(p.dtype, copy=False)
            p.grad, offset = _exchanged(summed, counts[i], counts[n + i]), offset + p.size
        return tuple(bool(count > 0) for count in counts[2 * n:])

    def share_updates(self, problem=False):
        """After the optimiser's step that followed `average_gradients`: every rank sees
        the new values of the parameters other ranks updated (nothing to do when every
        rank updated every one). Returns whether any rank raised `problem` (its update
        went wrong), so that all stop together."""
        return bool(problem) if self._step is None else self._step.updated(problem)

    def share_optimizer_state(self, optimizer):
        """Every rank gets the optimiser's slots (Adam's moments, SGD's velocity) of the
        parameters other ranks update, so its state_dict is whole (a checkpoint that
        includes the optimiser, a resumed fit); fit calls this at the end of each epoch."""
        if self._step is not None:
            self._step.share_slots(optimizer)

    def end_training(self):
        """At the end of fit (also when it raises; no communication): the parameters get
        private arrays again, out of the shared memory."""
        if self._shared is not None:
            self._shared.release()
        self._step = None

    def _shared_step(self, params, dtype, flags):
        """The SharedMemoryStep of this layout, made (collectively) on first use; None
        when the ranks are not all on one node, MINIDL_MPI_SHARED_MEMORY=0, or the
        parameters' dtypes differ (their arrays could not be views of one buffer)."""
        if self._one_node is None:
            node = self.comm.Split_type(self.mpi.COMM_TYPE_SHARED)
            self._one_node = node.Get_size() == self.size and os.environ.get(SHARED_MEMORY_VARIABLE, "") != "0"
            node.Free()
        if not self._one_node or self.size == 1 or any(p.dtype != dtype for p in params):
            return None
        if self._shared is None or not self._shared.serves(params, dtype, flags):
            if self._shared is not None:
                self._shared.release()
                self._shared.free()
            self._shared = SharedMemoryStep(self, [p.size for p in params], dtype, flags)
        return self._shared

    def average_buffers(self, model):
        """Give every rank the mean over the ranks of the model's floating buffers
        (batch normalisation's moving statistics)."""
        names = [name for name, data in model.named_buffers() if data.dtype.kind == "f"]
        if not names:
            return
        state = model.state_dict()
        flat = np.concatenate([state[name].reshape(-1) for name in names]).astype(np.float64)
        flat = self._allreduce_sum(flat) / self.size
        offset = 0
        for name in names:
            count = state[name].size
            state[name] = flat[offset:offset + count].reshape(state[name].shape)
            offset += count
        model.load_state_dict(state)

    def abort(self, error):
        """Print `error` with its traceback, naming this rank, and end every rank of the
        job (MPI_Abort): the others may be waiting in a collective this rank will never
        join. Does not return."""
        text = "".join(traceback.format_exception(error)).rstrip()
        self._end_job(f"minidl: rank {self.rank} of {self.size} failed; stopping every rank\n{text}")

    def _unanswered(self, what, seconds):
        """The watchdog's verdict: another rank has stopped answering."""
        self._end_job(f"minidl: rank {self.rank} of {self.size} waited {seconds:.0f} s in {what} for the other "
                      f"ranks: one of them has stopped answering (hung, dead-locked or stalled, or far slower than "
                      f"the rest); ending the job. {TIMEOUT_VARIABLE} sets how long a rank waits "
                      f"(now {self.watchdog.timeout:g} s; 0 waits forever).")

    def _end_job(self, message):
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
        # The launcher relays our stderr asynchronously and MPI_Abort kills the relay with
        # the job: on a busy machine the message was lost without a moment's grace.
        time.sleep(ABORT_GRACE_SECONDS)
        self.comm.Abort(1)
        os._exit(1)  # MPICH's MPI_Abort can return before the launcher has ended this process
