"""A per-epoch progress bar with no dependencies:

    Epoch 3/10 [=====>........................] 512/1000 - loss 0.4123 - acc 0.8123 - 1520 samples/s - ETA 0s

On a terminal the line is redrawn in place (at most every `refresh` seconds); on a
pipe or file only the finished epoch's line is written, so logs stay one line per epoch.
"""
import sys
import time

#: Short names for the bar; other metrics keep their own.
ABBREVIATIONS = {"accuracy": "acc", "roc_auc": "auc", "val_accuracy": "val_acc", "val_roc_auc": "val_auc"}
_FULL_NAMES = {short: name for name, short in ABBREVIATIONS.items()}


def logged_name(name):
    """The name `fit` logs a metric under, from the bar's short name or the full one
    ("val_auc" -> "val_roc_auc", "acc" -> "accuracy"): one vocabulary for both."""
    return _FULL_NAMES.get(name, name)


def format_duration(seconds):
    """3s, 1m05s or 2h03m."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def format_metrics(values):
    """' - loss 0.4123 - acc 0.8123' for a dict of floats."""
    return "".join(f" - {ABBREVIATIONS.get(name, name)} {value:.4f}" for name, value in values.items())


class ProgressBar:
    """The bar of one epoch: `update(done, values)` after each batch, `finish(values)`
    once at the end (with the validation metrics added to `values`).

    interactive: redraw in place; by default when `stream` is a terminal.
    """

    def __init__(self, total, epoch, epochs, stream=None, width=30, interactive=None, refresh=0.1):
        self.total, self.epoch, self.epochs = int(total), int(epoch), int(epochs)
        self.stream = sys.stderr if stream is None else stream
        self.width = int(width)
        if interactive is None:
            isatty = getattr(self.stream, "isatty", None)
            interactive = bool(isatty and isatty())
        self.interactive = interactive
        self.refresh = float(refresh)
        self.start = time.perf_counter()
        self._last_draw = None
        self._last_length = 0

    def _bar(self, done):
        filled = self.width * done // max(self.total, 1)
        if done >= self.total:
            return "=" * self.width
        return "=" * filled + ">" + "." * (self.width - filled - 1)

    def _line(self, done, values, finished):
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        speed = done / elapsed
        digits = len(str(self.total))
        line = (f"Epoch {self.epoch}/{self.epochs} [{self._bar(done)}] {done:{digits}d}/{self.total}"
                f"{format_metrics(values)} - {speed:.0f} samples/s")
        if finished:
            return line + f" - {format_duration(elapsed)}"
        remaining = (self.total - done) / speed if speed > 0 else 0.0
        return line + f" - ETA {format_duration(remaining)}"

    def _write(self, line, end):
        # Pad with spaces so a shorter line fully covers the previous one.
        padding = " " * max(self._last_length - len(line), 0)
        self.stream.write("\r" + line + padding + end)
        self.stream.flush()
        self._last_length = len(line)

    def update(self, done, values):
        """Redraw after `done` samples with the running `values` (terminal only)."""
        if not self.interactive:
            return
        now = time.perf_counter()
        if self._last_draw is not None and now - self._last_draw < self.refresh:
            return
        self._last_draw = now
        self._write(self._line(done, values, finished=False), end="")

    def finish(self, values):
        """Write the epoch's final line with `values` and end it."""
        line = self._line(self.total, values, finished=True)
        if self.interactive:
            self._write(line, end="\n")
        else:
            self.stream.write(line + "\n")
            self.stream.flush()
