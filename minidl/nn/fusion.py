"""Whether modules may run several layers as one fused op.

A model can keep its layers (for weights, names, configs and summaries) and still run a
chain of them as one faster op, as the URL models' convolution branches do
(Conv1D -> ELU -> pooling as `conv1d_elu_pool`). Such a module asks `fusion_enabled()`
in its forward; inside `layer_by_layer()` it calls its layers one by one instead, with
the same values. The summary traces that way, so every layer shows; a reader can do
the same to step through the layers.
"""
import contextlib

_state = {"fusion": True}


def fusion_enabled():
    """True unless inside `layer_by_layer()`."""
    return _state["fusion"]


@contextlib.contextmanager
def layer_by_layer():
    """Run every module's layers one by one inside the block (no fused ops)."""
    previous = _state["fusion"]
    _state["fusion"] = False
    try:
        yield
    finally:
        _state["fusion"] = previous
