"""Differentiable operations, one module per family; `minidl.functional` gathers them."""
