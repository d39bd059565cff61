"""Train / validation / test splits: random, stratified by label, or grouped by host.

The source splits 75/25 with scikit-learn's `train_test_split(..., test_size=0.25,
random_state=33)`; the defaults here are the same fractions and seed (the exact rows
differ from scikit-learn's, whose shuffling is its own). A random split of URLs puts
pages of the same host on both sides, which flatters a model that has learnt host
names; `split_by_host` keeps each host on one side.

Every function takes the arrays to split (lists or NumPy arrays of one length) and
returns their parts in order, (a_train, a_test, b_train, b_test, ...) as scikit-learn
does; a single int n instead of arrays gives index arrays.
"""
import re

import numpy as np

# The data's normalisation (shared/data/README.md): scheme, then a leading "www.", removed.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_WWW = re.compile(r"^www\.", re.IGNORECASE)
_HOST_END = re.compile(r"[/?#]")


def normalize_url(url):
    """A URL as the data sets store it: surrounding space, a scheme and a leading 'www.'
    removed, so a URL typed with "https://www." scores as the training data looked."""
    return _WWW.sub("", _SCHEME.sub("", url.strip()))


def url_host(url):
    """The host of a URL as the data sets define it: scheme and a leading 'www.' removed,
    then the text before the first '/' (or '?' or '#', so that 'a.com?x' and 'a.com/y'
    share a host), lower-cased because host names are case-insensitive."""
    return _HOST_END.split(normalize_url(url), maxsplit=1)[0].lower()


def train_test_split(*arrays, test_size=0.25, stratify=None, groups=None, seed=33):
    """Random split into train and test -> (a_train, a_test, b_train, b_test, ...).

    stratify: labels (n,) whose proportions each part keeps (a class with n_c of the n
    rows gets n_c * part_size / n of a part's rows, rounded up or down); groups: keys
    (n,) such as host names, each group wholly in one part (the fractions then hold to
    within about half the largest group). Seeded: the same call gives the same split."""
    return _split(arrays, {"test_size": test_size}, stratify, groups, seed, "train_test_split")


def train_val_test_split(*arrays, val_size=0.1, test_size=0.25, stratify=None, groups=None, seed=33):
    """Random split into train, validation and test ->
    (a_train, a_val, a_test, b_train, b_val, b_test, ...); options as train_test_split."""
    sizes = {"val_size": val_size, "test_size": test_size}
    return _split(arrays, sizes, stratify, groups, seed, "train_val_test_split")


def split_by_host(urls, *arrays, test_size=0.25, val_size=None, seed=33):
    """Split URLs (and arrays row-aligned with them) so that no host is in two parts:
    (urls_train, urls_test, a_train, a_test, ...), or with val_size the train / val /
    test triples. See `url_host` for what counts as the host."""
    hosts = [url_host(url) for url in urls]
    if val_size is None:
        return train_test_split(urls, *arrays, test_size=test_size, groups=hosts, seed=seed)
    return train_val_test_split(urls, *arrays, val_size=val_size, test_size=test_size, groups=hosts, seed=seed)


def split_indices(n, fractions, stratify=None, groups=None, seed=33):
    """Indices 0..n-1 shuffled into len(fractions) parts of about those fractions of n
    (fractions sum to 1). The engine of the functions above."""
    rng = np.random.default_rng(seed)
    fractions = np.asarray(fractions, dtype=np.float64)
    if fractions.ndim != 1 or np.any(fractions < 0) or not np.isclose(fractions.sum(), 1):
        raise ValueError(f"split: fractions must be >= 0 and sum to 1, got {fractions.tolist()}")
    if stratify is not None and groups is not None:
        raise ValueError("split: stratify and groups cannot be combined")
    if groups is not None:
        parts = _split_groups(groups, n, fractions, rng)
    else:
        labels = np.zeros(n, dtype=np.int64) if stratify is None else _as_codes(stratify, n, "stratify")
        parts = _split_stratified(labels, fractions, rng)
    return [rng.permutation(part) for part in parts]


def _split(arrays, sizes, stratify, groups, seed, where):
    if not arrays:
        raise ValueError(f"{where}: give at least one array (or the number of rows)")
    if len(arrays) == 1 and isinstance(arrays[0], (int, np.integer)):
        n, arrays = int(arrays[0]), ()
        if n < 0:
            raise ValueError(f"{where}: the number of rows must be >= 0, got {n}")
    else:
        lengths = [len(array) for array in arrays]
        if len(set(lengths)) > 1:
            raise ValueError(f"{where}: the arrays have different lengths {lengths}")
        n = lengths[0]
    for name, size in sizes.items():
        if not 0 < size < 1:
            raise ValueError(f"{where}: {name} must be a fraction between 0 and 1, got {size!r}")
    train = 1 - sum(sizes.values())
    if train <= 0:
        raise ValueError(f"{where}: the sizes {sizes} leave nothing for training")
    parts = split_indices(n, [train, *sizes.values()], stratify, groups, seed)
    if not arrays:
        return tuple(parts)
    return tuple(_take(array, part) for array in arrays for part in parts)


def _take(array, indices):
    if isinstance(array, np.ndarray):
        return array[indices]
    return [array[i] for i in indices]


def _as_codes(keys, n, name):
    """Any keys (labels, host names) -> integer codes 0..k-1, checked to be n long."""
    if len(keys) != n:
        raise ValueError(f"split: {name} has {len(keys)} entries for {n} rows")
    return np.unique(np.asarray(keys), return_inverse=True)[1].ravel()


def _targets(n, fractions):
    """Row counts per part summing to n: floors of n * fractions, the rest handed out to
    the largest remainders (ties to the earlier part)."""
    exact = n * fractions
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def _split_stratified(labels, fractions, rng):
    """Each class shuffled and cut in the global proportions: part p gets exactly its
    target count t_p and class c gets n_c * t_p / n rows of it, rounded up or down."""
    if not len(labels):
        return [np.zeros(0, dtype=np.int64) for _ in fractions]
    classes, labels = np.unique(labels, return_inverse=True)
    members = [rng.permutation(np.flatnonzero(labels == c)) for c in range(len(classes))]
    sizes = np.array([len(m) for m in members], dtype=np.int64)
    cells = _round_table(np.outer(sizes, _targets(len(labels), fractions)), max(len(labels), 1), rng)
    bounds = np.cumsum(cells, axis=1) - cells
    return [
        np.concatenate([members[c][bounds[c, p] : bounds[c, p] + cells[c, p]] for c in range(len(classes))])
        for p in range(len(fractions))
    ]


def _round_table(numerators, denominator, rng):
    """Round the table numerators / denominator, whose row and column sums are integers,
    to integers, each cell up or down, keeping every row and column sum.

    The fractional parts form a fractional flow from rows to columns, so a 0/1 one exists
    (integral flow theorem): cells are rounded up in order of their remainders while
    their row and column still lack, then augmenting paths place what the greedy pass
    could not. Integer arithmetic, so no rounding error decides anything."""
    cells, remainders = np.divmod(numerators, denominator)
    row_short = numerators.sum(axis=1) // denominator - cells.sum(axis=1)
    column_short = numerators.sum(axis=0) // denominator - cells.sum(axis=0)
    raised = np.zeros(cells.shape, dtype=bool)
    # random tie-break among equal remainders, so that no class is favoured
    order = np.lexsort((rng.random(cells.size), -remainders.ravel()))
    for row, column in zip(*np.unravel_index(order, cells.shape)):
        if remainders[row, column] and row_short[row] and column_short[column]:
            raised[row, column] = True
            row_short[row] -= 1
            column_short[column] -= 1
    while row_short.any():
        path = _augmenting_path(remainders > 0, raised, row_short, column_short)
        for row, column, raise_it in path:
            raised[row, column] = raise_it
        row_short[path[0][0]] -= 1
        column_short[path[-1][1]] -= 1
    return cells + raised


def _augmenting_path(may_raise, raised, row_short, column_short):
    """Breadth-first search from a row that lacks, through cells that could be raised
    (row -> column) and cells already raised (column -> row), to a column that lacks;
    -> [(row, column, new raised state), ...] in path order."""
    parent_of_column = {}  # column -> the row it was reached from
    parent_of_row = {int(r): None for r in np.flatnonzero(row_short)}  # row -> column it came from
    frontier = list(parent_of_row)
    while frontier:
        reached = []
        for row in frontier:
            for column in np.flatnonzero(may_raise[row] & ~raised[row]).tolist():
                if column in parent_of_column:
                    continue
                parent_of_column[column] = row
                if column_short[column]:
                    path, end = [], column
                    while end is not None:
                        start = parent_of_column[end]
                        path.append((start, end, True))
                        end = parent_of_row[start]
                        if end is not None:
                            path.append((start, end, False))
                    return path[::-1]
                for next_row in np.flatnonzero(raised[:, column]).tolist():
                    if next_row not in parent_of_row:
                        parent_of_row[next_row] = column
                        reached.append(next_row)
        frontier = reached
    raise AssertionError("split: no rounding of the stratified table exists; this is a bug")


def _split_groups(groups, n, fractions, rng):
    """Groups in random order, laid end to end by size; a group goes to the part whose
    share of the rows contains the group's middle, so each part's row count is within
    about half the largest group of its target."""
    codes = _as_codes(groups, n, "groups")
    sizes = np.bincount(codes)
    order = rng.permutation(len(sizes))
    middle = np.cumsum(sizes[order]) - sizes[order] / 2
    part_of_group = np.empty(len(sizes), dtype=np.int64)
    part_of_group[order] = np.searchsorted(np.cumsum(fractions)[:-1] * n, middle, side="right")
    part_of_row = part_of_group[codes]
    return [np.flatnonzero(part_of_row == part) for part in range(len(fractions))]


def split_parts(urls, x, y, split="host", test_size=0.25, validation_split=0.0, seed=33):
    """((x_train, y_train), (x_val, y_val) or None, (x_test, y_test)): the parts of a
    training run. split: "host" (no host in two parts), "random" or "stratified"
    (random, keeping the class proportions); validation_split: the fraction of the
    training part held out for validation (0 for none)."""
    val_size = validation_split * (1 - test_size) if validation_split else None
    if split == "host":
        parts = split_by_host(urls, x, y, test_size=test_size, val_size=val_size, seed=seed)
        parts = parts[len(parts) // 3:]  # drop the URLs, keep x and y parts
    else:
        stratify = y if split == "stratified" else None
        if val_size:
            parts = train_val_test_split(x, y, val_size=val_size, test_size=test_size, stratify=stratify, seed=seed)
        else:
            parts = train_test_split(x, y, test_size=test_size, stratify=stratify, seed=seed)
    if val_size:
        x_train, x_val, x_test, y_train, y_val, y_test = parts
        return (x_train, y_train), (x_val, y_val), (x_test, y_test)
    x_train, x_test, y_train, y_test = parts
    return (x_train, y_train), None, (x_test, y_test)
