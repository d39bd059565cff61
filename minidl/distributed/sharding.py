"""Which rows each rank works on: contiguous blocks, and each step's shares."""



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
