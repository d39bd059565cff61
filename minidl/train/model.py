"""Model: a Module that trains, as Keras draws the line (a Layer computes; only a Model
has compile / fit / evaluate / predict). Subclass it for a model of your own, or use
`minidl.models.Sequential` and `GraphModel`; the URL models are Models too.

    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy", "auc"])
    history = model.fit(x, y, epochs=5, batch_size=64, validation_split=0.1)
    model.evaluate(x_test, y_test)          # {"loss": ..., "accuracy": ..., "roc_auc": ...}
    model.predict(x_new)
    model.summary(input_shape=(None, 75), input_dtype="int32")

Each method is a thin call into this package's functions (`fit`, `evaluate`, `predict`
in loop.py), which serve any Module; the methods only remember what `compile` said.
"""
from minidl.nn import Module
from minidl.nn.summary import summary
from minidl.optim import Optimizer
from minidl.train.loop import OPTIMIZERS, evaluate, fit, predict
from minidl.train.progress import logged_name


class Model(Module):
    """A Module with Keras' model methods."""

    def compile(self, optimizer="adam", loss=None, metrics=None, from_logits=None):
        """Remember how to train and what to report, as Keras' compile does.

        optimizer: "adam" or "sgd" (Keras' defaults), an Optimizer, or a factory called
            with the parameters once the model is built (functools.partial(Adam, lr=1e-4));
            a name or factory is made on the first `fit` and kept, so a second `fit`
            continues with the same optimiser state, as in Keras.
        loss, from_logits: as `minidl.train.fit`'s.
        metrics: the names `evaluate` returns besides the loss ("accuracy", "roc_auc"
            or the progress bar's "auc", "f1", ...); None returns every metric."""
        self._compiled = {"optimizer": optimizer, "loss": loss, "metrics": metrics, "from_logits": from_logits}
        return self

    def _compile_setting(self, name, default=None):
        return self.__dict__.get("_compiled", {}).get(name, default)

    def fit(self, x, y, **options):
        """`minidl.train.fit(self, x, y, ...)` with the compiled optimizer, loss and
        from_logits; returns the History."""
        optimizer = options.pop("optimizer", self._compile_setting("optimizer")) or "adam"
        if not isinstance(optimizer, Optimizer):
            make = OPTIMIZERS.get(optimizer.lower()) if isinstance(optimizer, str) else optimizer
            if make is None:
                raise ValueError(f"fit: unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")

            def made_once(parameters):
                made = make(parameters)
                self.__dict__.setdefault("_compiled", {})["optimizer"] = made
                return made
            optimizer = made_once
        options.setdefault("loss", self._compile_setting("loss"))
        options.setdefault("from_logits", self._compile_setting("from_logits"))
        return fit(self, x, y, optimizer=optimizer, **options)

    def evaluate(self, x, y, **options):
        """`minidl.train.evaluate(self, x, y, ...)`: the loss and the compiled metrics
        (every metric when none were compiled), as a dict."""
        options.setdefault("loss", self._compile_setting("loss"))
        options.setdefault("from_logits", self._compile_setting("from_logits"))
        scores = evaluate(self, x, y, **options)
        wanted = self._compile_setting("metrics")
        if wanted is None:
            return scores
        names = [logged_name(name) for name in wanted]
        unknown = [name for name in names if name not in scores]
        if unknown:
            raise ValueError(f"evaluate: no metric {', '.join(map(repr, unknown))} for this model; "
                             f"known: {', '.join(scores)}")
        return {name: scores[name] for name in ["loss", *names]}

    def predict(self, x, **options):
        """`minidl.train.predict(self, x, ...)`: the probabilities, as a NumPy array."""
        options.setdefault("from_logits", self._compile_setting("from_logits"))
        return predict(self, x, **options)

    def summary(self, input_shape=None, input_dtype=None, print_fn=print):
        """Print and return Keras' summary table (`minidl.nn.summary`)."""
        return summary(self, input_shape=input_shape, input_dtype=input_dtype, print_fn=print_fn)
