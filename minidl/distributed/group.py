"""ProcessGroup: the processes of one MPI communicator and the collective steps of
data-parallel training and scoring; `resolve_group` turns fit's `distributed` argument
into one."""
import os
import sys
import time
import traceback

import numpy as np

from minidl import backend
from minidl.distributed.exchange import (
    SHARED_MEMORY_VARIABLE,
    SharedMemoryStep,
    exchanged,
    pack_gradients,
)
from minidl.distributed.launch import RootFailed, launch_size, mpi_module
from minidl.distributed.sharding import block, shard_steps
from minidl.distributed.watchdog import TIMEOUT_VARIABLE, Watchdog, watchdog_timeout

#: Seconds a failing rank waits, after printing its error, before ending the job.
ABORT_GRACE_SECONDS = 0.5


_world = None  # the ProcessGroup of MPI_COMM_WORLD, made on first use


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


class ProcessGroup:
    """The processes of one MPI communicator (default MPI_COMM_WORLD) and the collective
    steps that data-parallel training takes with them. Every method is collective:
    each rank must call it, in the same order.

    timeout: seconds a rank may wait in one collective for the others before the
    watchdog prints which rank waited and where, and ends the job (default
    MINIDL_MPI_TIMEOUT, else DEFAULT_TIMEOUT_SECONDS; 0: wait forever)."""

    def __init__(self, comm=None, timeout=None):
        self.mpi = mpi_module()
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
        flat = pack_gradients(xp.empty(total + 2 * n + len(flags), dtype=dtype), params, share, flags)
        flat = self._allreduce_sum(flat)
        counts = backend.to_numpy(flat[total:])
        offset = 0
        for i, p in enumerate(params):  # views out of the reduced buffer: no copies back
            summed = flat[offset:offset + p.size].reshape(p.shape).astype(p.dtype, copy=False)
            p.grad, offset = exchanged(summed, counts[i], counts[n + i]), offset + p.size
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
