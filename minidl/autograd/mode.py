"""Grad mode: whether ops record the graph. `no_grad()` turns recording off in a block."""
import contextlib
import threading

_local = threading.local()


def is_grad_enabled():
    return getattr(_local, "enabled", True)


@contextlib.contextmanager
def set_grad_enabled(enabled):
    previous = is_grad_enabled()
    _local.enabled = bool(enabled)
    try:
        yield
    finally:
        _local.enabled = previous


def no_grad():
    """Context in which no op records the graph (inference, optimiser updates)."""
    return set_grad_enabled(False)
