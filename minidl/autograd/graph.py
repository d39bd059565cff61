"""The backward pass: walk the graph in reverse topological order, iteratively.

No recursion (an LSTM unrolled over hundreds of steps would overflow Python's stack);
each node's gradient is dropped as soon as it has been passed on; leaves accumulate
into `.grad`.
"""


def topological_order(root):
    """Tensors reachable from `root` through recorded nodes, root first, each before
    every tensor it was computed from (an iterative depth-first post-order, reversed)."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        tensor, expanded = stack.pop()
        if expanded:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        if tensor._node is not None:
            for parent in tensor._node.inputs:
                if parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    order.reverse()
    return order


def unbroadcast(grad, shape, op_name):
    """Sum `grad` down to `shape`, undoing NumPy broadcasting; the one place that does.

    Broadcasting prepends axes and stretches axes of length 1, so the gradient of the
    smaller input is the sum over the prepended axes and over the stretched ones.
    """
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra < 0:
        raise ValueError(f"{op_name}.backward returned gradient of shape {grad.shape} for an input of shape {shape}")
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    if grad.shape != shape:
        raise ValueError(f"{op_name}.backward returned gradient of shape {grad.shape} for an input of shape {shape}")
    return grad


def run_backward(root, grad):
    """Propagate `grad` (d loss / d root, same shape as root) to every leaf that
    requires grad, adding into the leaves' `.grad`."""
    pending = {id(root): grad}
    for tensor in topological_order(root):
        grad = pending.pop(id(tensor), None)
        if grad is None:
            continue
        node = tensor._node
        if node is None:
            tensor._accumulate_grad(grad)
            continue
        input_grads = node.function.backward(node.ctx, grad)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        if len(input_grads) != len(node.inputs):
            raise ValueError(
                f"{node.name}.backward returned {len(input_grads)} gradients for {len(node.inputs)} inputs"
            )
        for parent, parent_grad in zip(node.inputs, input_grads):
            if parent_grad is None or not parent.requires_grad:
                continue
            parent_grad = unbroadcast(parent_grad, parent.shape, node.name)
            if parent_grad.dtype != parent.dtype:
                parent_grad = parent_grad.astype(parent.dtype)
            key = id(parent)
            pending[key] = pending[key] + parent_grad if key in pending else parent_grad
