"""The gradient exchange of one data-parallel step: the flat buffer of every gradient,
and on one node the shared-memory step in which each rank owns and updates a part of
the parameters (ZeRO stage 1)."""

import numpy as np

from minidl import backend
from minidl.sparse import IndexedSlices

#: Set to 0 to exchange gradients by allreduce even when every rank is on one node.
SHARED_MEMORY_VARIABLE = "MINIDL_MPI_SHARED_MEMORY"


def pack_gradients(flat, params, share, flags, kept=()):
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


def summed_gradient(param, share, parts):
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


def exchanged(summed, ranks, sparse_ranks):
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
        pack_gradients(self.slots[rank][:-1], params, share, flags, kept=self.owned)  # no rank reads those
        self.meet("a gradient exchange")
        counts = sum(slot[self.total:-1] for slot in self.slots)
        others, n = [slot for r, slot in enumerate(self.slots) if r != rank], len(params)
        for i, p in enumerate(params):
            owned = i in self.owned and counts[i]
            p.grad = exchanged(summed_gradient(p, share, [self._part(slot, i) for slot in others]), counts[i],
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
