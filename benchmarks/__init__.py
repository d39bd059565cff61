"""Benchmarks of minidl against PyTorch (optional, never part of the test suite):
`python -m benchmarks.compare` for the URL models, `python -m benchmarks.ops` per op.
See benchmarks/README.md."""
