"""fit, evaluate and predict for any minidl.nn.Module, with Keras' semantics.

    history = fit(model, x_train, y_train, epochs=10, batch_size=64, validation_split=0.25)
    scores = evaluate(model, x_test, y_test)        # {"loss", "accuracy", "roc_auc", ...}
    probabilities = predict(model, x_new)

Inputs: `x` is one array (float features, or integer ids for an Embedding) or a tuple /
list of arrays, one per input of a multi-input model (called as model(*inputs)).
Floating inputs are cast to the model's dtype; integer inputs stay integers.
Targets: 0/1 for binary models (output (n,) or (n, 1)), integer labels 0..k-1 for
multi-class ones (output (n, k)). How outputs, targets and losses relate (probabilities
or logits, which loss) is decided once by an `Objective` (minidl.train.objectives).
`distributed="auto"` spreads the work over the processes of an MPI launch
(minidl.distributed); a plain run is untouched by it.
"""

from typing import NamedTuple

import numpy as np

from minidl import backend, optim
from minidl.autograd import Tensor, no_grad
from minidl.distributed import block, resolve_group, shard_steps
from minidl.train import metrics
from minidl.train.callbacks import History
from minidl.train.divergence import DivergenceGuard, TrainingDiverged
from minidl.train.objectives import Objective, outputs_logits, resolve_objective, task_of_output
from minidl.train.progress import ProgressBar

#: The binary operating points `evaluate` reports: metric name -> largest false-positive rate.
TPR_AT_FPR = {"tpr_at_fpr_1e-2": 1e-2, "tpr_at_fpr_1e-3": 1e-3}
#: The epoch metrics the progress bar shows (with their "val_" twins).
SHOWN = ("loss", "accuracy", "roc_auc")


# -------------------------------------------------------------------- inputs
def _as_inputs(x, what="x"):
    """(list of host arrays, one per model input; their common length)."""
    parts = list(x) if isinstance(x, (tuple, list)) else [x]
    if not parts:
        raise ValueError(f"{what}: no input arrays given")
    arrays = [part.numpy() if isinstance(part, Tensor) else backend.to_numpy(part) for part in parts]
    for array in arrays:
        if array.ndim == 0:
            raise ValueError(f"{what}: an input must have a batch axis, got a scalar")
    lengths = {len(array) for array in arrays}
    if len(lengths) != 1:
        raise ValueError(f"{what}: the input arrays have different numbers of samples: {sorted(lengths)}")
    n = lengths.pop()
    if n == 0:
        raise ValueError(f"{what}: no samples given")
    return arrays, n


def _as_targets(y, n, what="y"):
    y = y.numpy() if isinstance(y, Tensor) else backend.to_numpy(y)
    if y.ndim == 0 or len(y) != n:
        raise ValueError(f"{what} has {0 if y.ndim == 0 else len(y)} targets for {n} samples")
    return y


def _take(arrays, index):
    return [array[index] for array in arrays]


def _device_and_dtype(model):
    """Where the model's weights live and their floating dtype (the defaults before build)."""
    for parameter in model.parameters():
        if parameter.dtype.kind == "f":
            return parameter.device, parameter.dtype
    return backend.current_device(), np.dtype(backend.default_dtype())


def _to_tensors(arrays, device, dtype):
    """Model inputs: floating (and boolean) arrays cast to the model's dtype, integer ids
    kept as they are, all moved to the model's device."""
    tensors = []
    for array in arrays:
        if array.dtype.kind in "fb":
            array = array.astype(dtype, copy=False)
        tensors.append(Tensor(backend.to_device(array, device)))
    return tensors


def _batch_bounds(n, batch_size, join_single=False):
    """(start, stop) of each batch. join_single: a last batch of one sample joins the
    batch before it, because batch normalisation cannot estimate a variance from one."""
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if join_single and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def _check_batch_size(batch_size, what="batch_size"):
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"{what} must be a positive integer, got {batch_size}")
    return int(batch_size)


def _output_shape(model, arrays):
    """The output shape for the first two samples, from a forward pass in eval mode
    without grad; builds a model whose layers create their weights on first call."""
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            output = model(*_to_tensors(_take(arrays, slice(0, 2)), *_device_and_dtype(model)))
    finally:
        model.train(was_training)
    return output.shape


def _inference(model, arrays, batch_size, objective=None, y=None, group=None, sliced=False):
    """(outputs, loss, targets): the model's raw outputs on `arrays` as one host array,
    in eval mode without grad; with `objective` and `y` also the mean loss (including
    the regularisation term, as Keras reports it) and the targets in the outputs' order.
    With a process group each rank scores one contiguous block of rows (its block of
    the arrays it holds, or, `sliced`, all of them: rank 0 sent it its block) and every
    rank gets all the outputs and targets, in input order."""
    if group is not None and not sliced:
        rows = slice(*block(0, len(arrays[0]), group.rank, group.size))
        arrays, y = _take(arrays, rows), None if y is None else y[rows]
    device, dtype = _device_and_dtype(model)
    outputs, loss_sum, count = [], 0.0, len(arrays[0])
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for start, stop in _batch_bounds(len(arrays[0]), batch_size):
                output = model(*_to_tensors(_take(arrays, slice(start, stop)), device, dtype))
                if y is not None:
                    loss_sum += objective.loss(output, y[start:stop]).item() * (stop - start)
                outputs.append(backend.to_numpy(output.data))
            penalty = model.regularization_loss() if y is not None else None
    except BaseException as error:
        if group is not None:
            group.abort(error)
        raise
    finally:
        model.train(was_training)
    if group is not None:
        outputs, (loss_sum, count) = group.gather(outputs), group.sum([loss_sum, count])
        y = None if y is None else np.concatenate(group.gather([y]))
    loss = None if y is None else loss_sum / count + (0.0 if penalty is None else penalty.item())
    return np.concatenate(outputs), loss, y


# ------------------------------------------------------- inputs on rank 0 only
class _Inputs(NamedTuple):
    """What fit, evaluate and predict work on, after the checks: the input arrays, the
    targets, the per-sample weights, the validation pair (fit), the output shape and the
    sample count. On ranks other than 0 of a launch with the data on rank 0 alone, the
    data fields are None and the rest comes from rank 0."""

    arrays: list
    y: np.ndarray = None
    weights: np.ndarray = None
    validation: tuple = None
    output_shape: tuple = None
    n: int = 0
    has_validation: bool = False


def _prepared(group, rooted, model, prepare):
    """`prepare()` (the checks of the data, an _Inputs) where the data is: on every rank,
    or, `rooted`, on rank 0 alone, whose errors then reach every rank; the other ranks
    build their model on two rows of rank 0's data (for the layers that create their
    weights on first call) and get the output shape and the sample count."""
    if not rooted:
        return prepare()

    def on_root():
        inputs = prepare()
        return inputs, {"sample": _take(inputs.arrays, slice(0, 2)), "output_shape": inputs.output_shape,
                        "n": inputs.n, "has_validation": inputs.has_validation}

    inputs, summary = group.run_on_root(on_root)
    if group.is_root:
        return inputs
    _output_shape(model, summary.pop("sample"))
    return _Inputs(None, **summary)


def _scattered_blocks(group, pair):
    """This rank's block of rank 0's (arrays, y) pair (y may be None; None off rank 0)."""
    parts = group.scatter_blocks(None if pair is None else [*pair[0], pair[1]])
    return parts[:-1], parts[-1]


# ------------------------------------------------------------------ metrics
def _roc_metric(metric, *args):
    """A ROC-based metric, NaN where it is undefined (targets of one class only)."""
    try:
        return metric(*args)
    except ValueError:
        return float("nan")


def _classification_metrics(objective, y, outputs, loss, threshold=0.5):
    """evaluate's dict from the raw outputs and the targets; a binary model's labels are
    its probabilities above `threshold`."""
    true = objective.target_labels(y)
    if objective.task == "binary":
        scores = objective.probabilities(outputs).reshape(-1)
        predicted = (scores > threshold).astype(np.int64)
    else:
        predicted = objective.predicted_labels(outputs)
    result = {"loss": float(loss), "accuracy": metrics.accuracy(true, predicted)}
    if objective.task == "binary":
        precision, recall, f1 = metrics.precision_recall_f1(true, predicted, average="binary")
        result.update(roc_auc=_roc_metric(metrics.roc_auc, true, scores), precision=precision, recall=recall, f1=f1)
        for name, fpr in TPR_AT_FPR.items():
            result[name] = _roc_metric(metrics.tpr_at_fpr, true, scores, fpr)
        result["confusion_matrix"] = metrics.confusion_matrix(true, predicted, num_classes=2).tolist()
        return result
    classes = outputs.shape[-1]
    precision, recall, f1 = metrics.precision_recall_f1(true, predicted, average="macro", num_classes=classes)
    per_class = metrics.precision_recall_f1(true, predicted, average=None, num_classes=classes)
    result.update(precision=precision, recall=recall, f1=f1,
                  precision_per_class=per_class[0].tolist(), recall_per_class=per_class[1].tolist(),
                  f1_per_class=per_class[2].tolist(), support=np.bincount(true, minlength=classes).tolist(),
                  confusion_matrix=metrics.confusion_matrix(true, predicted, num_classes=classes).tolist())
    return result


def _sample_weights(class_weight, labels, classes):
    """Per-sample weights from Keras' class_weight ({label: weight}, missing labels 1)
    or "balanced" (n / (classes * count), scikit-learn's rule)."""
    if class_weight is None:
        return None
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be a dict or 'balanced', got {class_weight!r}")
        counts = np.bincount(labels, minlength=classes).astype(np.float64)
        table = np.divide(len(labels), classes * counts, out=np.ones(classes), where=counts > 0)
    else:
        table = np.ones(classes)
        for label, weight in dict(class_weight).items():
            if not 0 <= int(label) < classes:
                raise ValueError(f"class_weight: label {label} is not a class of this model (0..{classes - 1})")
            table[int(label)] = float(weight)
    return table[labels]


# ------------------------------------------------------------------ training
#: The optimiser names `fit` accepts, as Keras' compile(optimizer="adam") does.
OPTIMIZERS = {"adam": optim.Adam, "sgd": optim.SGD}


def _make_optimizer(optimizer, model):
    """The optimiser for a built model: an Optimizer, a factory called with the model's
    parameters (functools.partial(optim.Adam, lr=1e-4)), a name ("adam", "sgd": Keras'
    defaults), or None for Keras' Adam."""
    if optimizer is None:
        optimizer = optim.Adam
    if isinstance(optimizer, str):
        if optimizer.lower() not in OPTIMIZERS:
            raise ValueError(f"fit: unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}, "
                             "or pass an Optimizer")
        optimizer = OPTIMIZERS[optimizer.lower()]
    if not isinstance(optimizer, optim.Optimizer):
        if not callable(optimizer):
            raise TypeError(f"fit: optimizer must be an Optimizer or a factory of one, got {type(optimizer).__name__}")
        optimizer = optimizer(model.parameters())
    held = {id(p) for p in optimizer.params}
    left_out = [name for name, p in model.named_parameters() if p.requires_grad and id(p) not in held]
    if left_out:
        # Typically an optimiser made before the model's first call created its lazy weights.
        raise ValueError(f"fit: the optimizer does not update {len(left_out)} trainable parameters of the model "
                         f"({', '.join(left_out[:3])}...); build the model first (model.build(input_shape)) "
                         "or pass a factory: optimizer=functools.partial(optim.Adam, lr=...)")
    return optimizer


def _epoch_steps(n, batch_size, group):
    """For each optimiser step: ((start, stop) of this process' samples in the epoch's
    order, samples in the whole step); with a process group, this rank's part of
    steps of batch_size samples per rank (minidl.distributed.shard_steps)."""
    if group is None:
        return [((start, stop), stop - start) for start, stop in _batch_bounds(n, batch_size, join_single=True)]
    return shard_steps(n, batch_size, group.rank, group.size)


def _epoch_share(arrays, y, weights, order, n, batch_size, group, rooted):
    """(arrays, y, weights, order, steps) this process trains on in one epoch, steps as
    _epoch_steps gives them, into `order`. With a process group every rank takes rank
    0's order; with the data on rank 0 alone (`rooted`), rank 0 sends every rank the
    samples of its part of each step, in step order, and the rank takes them in turn."""
    if group is None:
        return arrays, y, weights, order, _epoch_steps(n, batch_size, None)
    if not rooted:
        return arrays, y, weights, group.broadcast(order), _epoch_steps(n, batch_size, group)
    parts, steps = group.scatter_steps(order, n, batch_size, None if arrays is None else [*arrays, y, weights])
    return parts[:-2], parts[-2], parts[-1], np.arange(len(parts[-2])), steps


def _train_epoch(model, optimizer, objective, inputs, batch_size, shuffle, callbacks, bar, epoch, group=None,
                 rooted=False):
    """One pass over the training data; the epoch's logs (loss, accuracy, roc_auc).
    With a process group the logs cover every rank's samples (the same on all ranks);
    the running values passed to the bar and to on_batch_end are this rank's.
    Raises TrainingDiverged (minidl.train.divergence) at a step whose loss or arithmetic
    is not finite, on every rank at the same step."""
    device, dtype = _device_and_dtype(model)
    # every rank draws the permutation, so the random streams stay as in a plain run
    order = backend.numpy_generator().permutation(inputs.n) if shuffle else np.arange(inputs.n)
    arrays, y, weights, order, steps = _epoch_share(inputs.arrays, inputs.y, inputs.weights, order, inputs.n,
                                                    batch_size, group, rooted)
    true_labels = objective.target_labels(y)
    seen, done, loss_sum, correct, scores, labels = 0, 0, 0.0, 0, [], []
    guard = DivergenceGuard(epoch, len(steps), optimizer, callbacks)
    model.train()
    for batch, ((start, stop), step_size) in enumerate(steps):
        index, size = order[start:stop], stop - start
        model.zero_grad()
        with guard.watch():
            output = model(*_to_tensors(_take(arrays, index), device, dtype))
            loss = model.regularized(objective.loss(output, y[index], None if weights is None else weights[index]))
            # with a process group, the gradient of this rank's share of the step's loss: the exchange only adds
            loss.backward(None if group is None else backend.get_array_module(loss.data).full(
                loss.shape, size / step_size, dtype=loss.dtype))
        loss_value = loss.item()
        problem = guard.problem(loss_value)
        if group is not None:
            # One exchange carries the gradients, a stop asked after the previous step and this step's trouble.
            stop_asked, diverged = group.average_gradients(optimizer.params, 1.0,
                                                           (model.stop_training and batch > 0, problem is not None))
            problem = problem or ("another rank's loss or arithmetic went wrong" if diverged else None)
            if stop_asked and problem is None:
                model.stop_training = True
                break
        if problem is not None:
            guard.stop(problem, batch)
        with guard.watch():
            optimizer.step()
        problem = guard.problem()
        if group is not None:  # on one node each rank updates its part of the parameters
            elsewhere = group.share_updates(problem is not None)
            problem = problem or ("another rank's update went wrong" if elsewhere else None)
        if problem is not None:
            guard.stop(problem, batch, in_update=True)

        seen += size
        done += step_size
        loss_sum += loss_value * size
        correct += int((objective.predicted_labels(output.data) == true_labels[index]).sum())
        if objective.task == "binary":
            scores.append(objective.probabilities(output.data).reshape(-1))
            labels.append(true_labels[index])
        running = {"loss": loss_sum / seen, "accuracy": correct / seen}
        if bar is not None:
            bar.update(done, running)
        for callback in callbacks:
            callback.on_batch_end(batch, dict(running, size=size))
        # Ranks stop together: a request made here travels with the next step's gradients.
        if model.stop_training and group is None:
            break
    if group is not None:
        loss_sum, correct, seen, stops = group.sum([loss_sum, correct, seen, model.stop_training])
        model.stop_training = bool(stops)
        scores, labels = group.gather(scores), group.gather(labels)
    logs = {"loss": float(loss_sum / seen), "accuracy": float(correct / seen)}  # the ranks' sums are NumPy's
    if objective.task == "binary":
        logs["roc_auc"] = _roc_metric(metrics.roc_auc, np.concatenate(labels), np.concatenate(scores))
    return logs


def _training_inputs(model, x, y, sample_weight, validation_data, validation_split, loss, from_logits,
                     class_weight):
    """fit's checks of its data: the _Inputs it trains and validates on (building the
    model: its output shape comes from a forward pass on two samples)."""
    arrays, n = _as_inputs(x)
    y = _as_targets(y, n)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
        if sample_weight.shape != (n,):
            raise ValueError(f"fit: sample_weight must hold one weight per sample, shape ({n},), "
                             f"got {sample_weight.shape}")
        if not np.all(np.isfinite(sample_weight) & (sample_weight >= 0)):
            raise ValueError("fit: sample_weight must be finite and non-negative")
    validation = None
    if validation_data is not None and validation_split:
        raise ValueError("fit: give validation_data or validation_split, not both")
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("fit: validation_data must be a pair (x_val, y_val)")
        val_arrays, val_n = _as_inputs(validation_data[0], "validation_data x")
        validation = (val_arrays, _as_targets(validation_data[1], val_n, "validation_data y"))
    elif validation_split:
        if not 0 < validation_split < 1:
            raise ValueError(f"fit: validation_split must be in (0, 1), got {validation_split}")
        split_at = int(n * (1.0 - validation_split))
        if split_at < 1 or split_at == n:
            raise ValueError(f"fit: validation_split={validation_split} of {n} samples leaves an empty part")
        validation = (_take(arrays, slice(split_at, None)), y[split_at:])
        arrays, y, n = _take(arrays, slice(None, split_at)), y[:split_at], split_at
        sample_weight = None if sample_weight is None else sample_weight[:split_at]

    output_shape = _output_shape(model, arrays)
    objective = resolve_objective(loss, model, output_shape, from_logits)
    objective.check_targets(y, output_shape[-1])
    if validation is not None:
        objective.check_targets(validation[1], output_shape[-1])
    if class_weight is not None and objective.loss_fn is not None:
        raise ValueError("fit: class_weight needs a built-in loss; weight the samples inside your loss callable")
    if sample_weight is not None and objective.loss_fn is not None:
        raise ValueError("fit: sample_weight needs a built-in loss; weight the samples inside your loss callable")
    classes = 2 if objective.task == "binary" else output_shape[-1]
    weights = _sample_weights(class_weight, objective.target_labels(y), classes)
    if sample_weight is not None:
        weights = sample_weight if weights is None else weights * sample_weight
    return _Inputs(arrays, y, weights, validation, output_shape, n, validation is not None)


def fit(model, x, y, epochs=1, batch_size=32, optimizer=None, loss=None, validation_data=None,
        validation_split=0.0, shuffle=True, callbacks=(), verbose=1, class_weight=None,
        from_logits=None, validation_batch_size=None, distributed=None, sample_weight=None, initial_epoch=0):
    """Train `model` on (x, y) for `epochs` epochs of mini-batches; returns a History:
    {"loss": [...], "accuracy": [...], "roc_auc": [...] (binary), and with validation
    data every scalar metric of `evaluate` prefixed "val_": "val_loss", "val_accuracy",
    "val_roc_auc", "val_tpr_at_fpr_1e-3", ...}, one value per epoch run.

    Each step: model.train(), zero the gradients, forward, loss (the data loss plus
    model.regularization_loss(), the L2 terms), backward, optimizer.step(). The epoch's
    loss and accuracy are running means over its batches, in training mode (as Keras).

    optimizer: an Optimizer over the (built) model's parameters, a factory called
        with them once fit has built the model (functools.partial(optim.Adam, lr=1e-4)),
        or a name, "adam" or "sgd" (Keras' default settings); default Adam with Keras'
        lr 1e-3. It must update every trainable parameter.
    loss: "binary_crossentropy", "sparse_categorical_crossentropy", a callable
        loss(output, targets) -> scalar Tensor (the batch mean), or None: picked from
        the output's width (1 -> binary, k -> sparse categorical).
    from_logits: whether the model outputs logits; None reads it from the model
        (see minidl.train.objectives).
    validation_data: (x_val, y_val); validation_split: the fraction of the samples,
        taken from the end of x and y before any shuffling (Keras), held out instead.
    shuffle: reorder the training samples each epoch (minidl.manual_seed repeats it).
    callbacks: Callback instances (EarlyStopping, ModelCheckpoint, CSVLogger, ...).
    verbose: 0 silent, 1 a progress bar per epoch on stderr, 2 one line per epoch.
    class_weight: {label: weight} or "balanced", weighting each sample's loss.
    sample_weight: one non-negative weight per training sample (Keras), multiplying its
        loss (and its class weight, when both are given); with validation_split it is
        cut like y.
    validation_batch_size: batch size of the validation pass (default batch_size).
    initial_epoch: the epoch to start at (Keras), counting from 0, to continue a run
        that stopped after that many epochs (see minidl.train.BackupAndRestore); the
        history then holds the epochs run by this call.
    distributed: None (this process alone), "auto" (data-parallel over the processes
        of an MPI launch, when there are several) or a minidl.distributed.ProcessGroup.
        batch_size is then per process; only rank 0 shows progress and runs the
        callbacks that write files. The data (x, y, validation_data, sample_weight)
        may be on rank 0 alone, x=None and y=None on the others: rank 0 checks it and
        sends every rank only its samples of each epoch; see minidl.distributed.

    A step whose loss is not finite, or whose arithmetic overflows, ends training with
    TrainingDiverged (minidl.train.divergence), naming the epoch and the step.

    A last batch of a single sample is joined to the one before it (batch
    normalisation needs two). The model's train/eval mode is restored afterwards.
    """
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"fit: epochs must be a positive integer, got {epochs}")
    if int(initial_epoch) != initial_epoch or not 0 <= initial_epoch < epochs:
        raise ValueError(f"fit: initial_epoch must be an integer in [0, epochs), got {initial_epoch}")
    batch_size = _check_batch_size(batch_size)
    validation_batch_size = _check_batch_size(validation_batch_size or batch_size, "validation_batch_size")
    if verbose not in (0, 1, 2):
        raise ValueError(f"fit: verbose must be 0, 1 or 2, got {verbose}")
    group = resolve_group(distributed)
    rooted = group is not None and group.data_on_root(x)
    inputs = _prepared(group, rooted, model, lambda: _training_inputs(
        model, x, y, sample_weight, validation_data, validation_split, loss, from_logits, class_weight))
    objective = resolve_objective(loss, model, inputs.output_shape, from_logits)
    validation = inputs.validation
    if rooted and inputs.has_validation:
        validation = _scattered_blocks(group, validation)
    optimizer = _make_optimizer(optimizer, model)
    shown = verbose
    if group is not None:
        group.prepare(model)
        callbacks = [callback for callback in callbacks if group.is_root or not callback.rank_zero_only]
        shown = verbose if group.is_root else 0

    history = History()
    callbacks = [*callbacks, history]  # last, as in Keras: it records what the others add to the logs ("lr")
    params = {"epochs": int(epochs), "batch_size": batch_size, "samples": inputs.n,
              "steps": len(_epoch_steps(inputs.n, batch_size, group)), "verbose": verbose}
    for callback in callbacks:
        callback.bind(model, optimizer, params)
    model.stop_training = False
    was_training = model.training
    for callback in callbacks:
        callback.on_train_begin({})
    try:
        for epoch in range(int(initial_epoch), int(epochs)):
            for callback in callbacks:
                callback.on_epoch_begin(epoch, {})
            bar = None if shown == 0 else ProgressBar(inputs.n, epoch + 1, epochs,
                                                      interactive=False if shown == 2 else None)
            logs = _train_epoch(model, optimizer, objective, inputs, batch_size, shuffle, callbacks, bar, epoch, group,
                                rooted)
            if group is not None:
                group.average_buffers(model)  # each rank's moving statistics saw only its samples
                group.share_optimizer_state(optimizer)  # each rank's holds what it updated
            if validation is not None:
                outputs, val_loss, targets = _inference(model, validation[0], validation_batch_size, objective,
                                                        validation[1], group, rooted)
                scores = _classification_metrics(objective, targets, outputs, val_loss)
                logs.update((f"val_{name}", value) for name, value in scores.items() if isinstance(value, float))
            if bar is not None:
                bar.finish({name: value for name, value in logs.items() if name.removeprefix("val_") in SHOWN})
            for callback in callbacks:
                callback.on_epoch_end(epoch, logs)
            if group is not None:
                model.stop_training = group.any(model.stop_training)  # a callback may have decided on one rank
            if model.stop_training:
                break
    except BaseException as error:
        if group is not None and not isinstance(error, TrainingDiverged):  # divergence stops every rank at once
            group.abort(error)  # the other ranks would wait for this one forever
        raise
    finally:
        model.train(was_training)
        if group is not None:
            group.end_training()  # the parameters out of the shared memory
    for callback in callbacks:
        callback.on_train_end({})
    return history


def evaluate(model, x, y, batch_size=256, loss=None, from_logits=None, distributed=None, threshold=0.5):
    """Metrics of `model` on (x, y), in eval mode without grad, as a dict of Python values.

    Binary models: loss, accuracy, roc_auc, precision, recall, f1 (class 1: probability
    above `threshold`, default 0.5), tpr_at_fpr_1e-2, tpr_at_fpr_1e-3 (largest TPR with FPR <= 1e-2 / 1e-3; NaN,
    like roc_auc, when y holds one class) and confusion_matrix [[tn, fp], [fn, tp]].
    Multi-class models: loss, accuracy, precision, recall, f1 (macro averages),
    precision_per_class, recall_per_class, f1_per_class, support (lists, one per class)
    and confusion_matrix (rows true, columns predicted).
    The loss includes the L2 regularisation term, as Keras reports it; `loss`,
    `from_logits` and `distributed` as in `fit` (each rank scores a block of the rows;
    every rank gets the metrics of all of them; the ranks must hold the same model; the
    data may be on rank 0 alone, x=None and y=None elsewhere, and is then scattered).
    """
    batch_size = _check_batch_size(batch_size)
    if not 0 <= threshold <= 1:
        raise ValueError(f"evaluate: threshold must be in [0, 1], got {threshold}")
    group = resolve_group(distributed)
    rooted = group is not None and group.data_on_root(x)
    inputs = _prepared(group, rooted, model, lambda: _scoring_inputs(model, x, y, loss, from_logits))
    objective = resolve_objective(loss, model, inputs.output_shape, from_logits)
    arrays, y = _scattered_blocks(group, inputs[:2] if group.is_root else None) if rooted else inputs[:2]
    outputs, mean_loss, targets = _inference(model, arrays, batch_size, objective, y, group, rooted)
    return _classification_metrics(objective, targets, outputs, mean_loss, threshold)


def _scoring_inputs(model, x, y=None, loss=None, from_logits=None):
    """evaluate's checks of its data (predict's, without targets) as an _Inputs."""
    arrays, n = _as_inputs(x)
    if y is None:
        return _Inputs(arrays, n=n)
    y = _as_targets(y, n)
    output_shape = _output_shape(model, arrays)
    resolve_objective(loss, model, output_shape, from_logits).check_targets(y, output_shape[-1])
    return _Inputs(arrays, y, output_shape=output_shape, n=n)


def predict(model, x, batch_size=1024, from_logits=None, distributed=None):
    """The model's probabilities for `x` as a NumPy array of the output's shape
    ((n, 1) or (n,) for binary models, (n, k) for multi-class ones), computed in eval
    mode without grad, in batches. A model that outputs logits (see `from_logits`) gets
    its sigmoid or softmax applied; from_logits=False returns the raw outputs.
    distributed as in `fit`: each rank scores a block of the rows and every rank gets
    all the probabilities, in input order (x may be None on ranks other than 0, which
    then sends them their blocks)."""
    batch_size = _check_batch_size(batch_size)
    group = resolve_group(distributed)
    rooted = group is not None and group.data_on_root(x)
    arrays = _prepared(group, rooted, model, lambda: _scoring_inputs(model, x)).arrays
    if rooted:
        arrays, _ = _scattered_blocks(group, (arrays, None) if group.is_root else None)
    outputs, _, _ = _inference(model, arrays, batch_size, group=group, sliced=rooted)
    if from_logits is None:
        from_logits = outputs_logits(model)
    if not from_logits:
        return outputs
    return Objective(task_of_output(outputs.shape), from_logits=True).probabilities(outputs)
