"""A budget on the weights that layers create.

`minidl.io` rebuilds a model from a file inside a `weight_budget` sized to the arrays the
file holds, so that a config asking for far more weights than that (an Embedding of a
million by a million) fails at once, before anything is allocated, instead of taking
the machine's memory. `Module.add_weight` charges every weight to the active budget.
"""
import contextlib
import contextvars
import math

#: [values left, values allowed, why] while a budget is active, else None.
_active = contextvars.ContextVar("minidl_weight_budget", default=None)


@contextlib.contextmanager
def weight_budget(values, why):
    """Inside the block, refuse (a ValueError that says `why` the limit holds) any
    weight that would take the values created in the block beyond `values`."""
    token = _active.set([int(values), int(values), why])
    try:
        yield
    finally:
        _active.reset(token)


def charged(layer, name, shape):
    """`shape` as a tuple of ints, once the values of `layer`'s weight `name` of that
    shape are charged to the active budget (if any)."""
    shape = tuple(int(n) for n in shape)
    budget = _active.get()
    if budget is not None:
        count = math.prod(shape)
        if count > budget[0]:
            raise ValueError(f"{type(layer).__name__} {layer.name!r} would create {name} of shape {shape} "
                             f"({count:,} values), beyond the {budget[1]:,} values {budget[2]}")
        budget[0] -= count
    return shape
