"""IndexedSlices: the gradient of a few rows of a large matrix, kept as those rows.

The gradient of an embedding bag over a 2^18-row table touches only the rows a batch
looked up; stored densely it would be 2^18 x dim zeros per step, and the optimiser would
then update every row. TensorFlow calls the sparse form IndexedSlices (the gradient of
`tf.gather`): `indices` (k,) unique row numbers in increasing order, `values` (k, dim)
the gradient of those rows, `dense_shape` the matrix's shape. The optimisers read it
and update only those rows (minidl.optim).

It passes through the autograd graph like an array: it has `shape` and `dtype`, `copy()`
and `astype()`, and adding it to another IndexedSlices keeps it sparse (the rows are
merged), while adding it to a dense array gives a dense array. Anything else that reads
it as an array (np.asarray, gradcheck, a finite-difference test) gets `to_dense()`.
"""
import numpy as np

from minidl import backend


class IndexedSlices:
    """rows `indices` (k,) of a (rows, dim) gradient with the values `values` (k, dim);
    every other row is zero. The indices are unique and increasing."""

    # NumPy and CuPy defer to our reflected operators (dense + sparse -> __radd__).
    __array_priority__ = 1000

    def __init__(self, indices, values, dense_shape):
        dense_shape = tuple(int(n) for n in dense_shape)
        if values.ndim != 2 or indices.shape != (values.shape[0],) or values.shape[1] != dense_shape[1]:
            raise ValueError(f"IndexedSlices: {indices.shape} indices and {values.shape} values do not "
                             f"describe rows of a {dense_shape} matrix")
        self.indices, self.values, self.dense_shape = indices, values, dense_shape

    @classmethod
    def coalesced(cls, indices, values, dense_shape):
        """The sum of `values` rows into their `indices`, which may repeat and come in any
        order: one row per distinct index, in increasing order."""
        xp = backend.get_array_module(values)
        rows, inverse = xp.unique(indices, return_inverse=True)
        summed = xp.zeros((rows.shape[0], values.shape[1]), dtype=values.dtype)
        xp.add.at(summed, inverse.reshape(-1), values)
        return cls(rows, summed, dense_shape)

    @classmethod
    def of_nonzero_rows(cls, dense):
        """The rows of the (rows, dim) matrix `dense` that are not all zeros."""
        xp = backend.get_array_module(dense)
        rows = xp.flatnonzero((dense != 0).any(axis=1))
        return cls(rows, dense[rows], dense.shape)

    @property
    def shape(self):
        return self.dense_shape

    @property
    def dtype(self):
        return self.values.dtype

    @property
    def ndim(self):
        return len(self.dense_shape)

    def copy(self):
        return IndexedSlices(self.indices.copy(), self.values.copy(), self.dense_shape)

    def astype(self, dtype):
        return IndexedSlices(self.indices, self.values.astype(dtype), self.dense_shape)

    def to_dense(self):
        """The full (rows, dim) gradient, zeros outside `indices`."""
        xp = backend.get_array_module(self.values)
        dense = xp.zeros(self.dense_shape, dtype=self.values.dtype)
        dense[self.indices] = self.values
        return dense

    def __array__(self, dtype=None, copy=None):
        dense = backend.to_numpy(self.to_dense())
        return dense if dtype is None else dense.astype(dtype)

    def __add__(self, other):
        if isinstance(other, IndexedSlices):
            if other.dense_shape != self.dense_shape:
                raise ValueError(f"IndexedSlices: cannot add gradients of shapes {self.dense_shape} and "
                                 f"{other.dense_shape}")
            xp = backend.get_array_module(self.values)
            return IndexedSlices.coalesced(xp.concatenate([self.indices, other.indices]),
                                           xp.concatenate([self.values, other.values]), self.dense_shape)
        dense = other.copy() if hasattr(other, "copy") else np.array(other)
        dense[self.indices] += self.values
        return dense

    __radd__ = __add__

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        # dense + sparse and dense += sparse on NumPy arrays; any other ufunc is refused.
        if ufunc is not np.add or method != "__call__" or len(inputs) != 2:
            return NotImplemented
        other = inputs[1] if inputs[0] is self else inputs[0]
        if out is None:
            return self + other
        (target,) = out
        if target is not other:
            target[...] = other
        target[self.indices] += self.values
        return target

    def __repr__(self):
        rows, dim = self.dense_shape
        return f"IndexedSlices({len(self.indices)} of {rows} rows, dim {dim}, {self.dtype})"
