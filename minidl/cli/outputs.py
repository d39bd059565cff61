"""What the commands write: output paths checked (and their folders made) before any
work starts, the metrics table, the trained model file."""
import contextlib
import importlib.util
import math
import os
from pathlib import Path

from minidl.cli.options import PLOT_INSTALL, SCORES, UsageError, UserError
from minidl.distributed import launch_rank
from minidl.io import save
from minidl.kernels.numba_cache import compile_messages


def output_file(path, option):
    """The file `path` that the command will write, checked now, before any training:
    a directory is refused, missing folders above it are made."""
    if path is None:
        return None
    target = Path(path).expanduser()
    if str(path).endswith(("/", os.sep)) or target.is_dir():
        raise UsageError(f"{option} {path}: is a directory; give the name of a file to write in it")
    return _with_folder(target, target.parent, option, path)


def output_folder(path, option):
    """The folder `path` that the command will write into, made now."""
    if path is None:
        return None
    target = Path(path).expanduser()
    if target.exists() and not target.is_dir():
        raise UsageError(f"{option} {path}: is a file; give a folder")
    return _with_folder(target, target, option, path)


def _with_folder(target, folder, option, given):
    """Every output path that cannot be written is a usage error (exit status 2), as one
    that names a directory is: the command line asked for it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"{option} {given}: cannot make the folder {folder} ({error.strerror})") from None
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{option} {given}: the folder {folder} is not writable")
    return target


def require_matplotlib(option):
    if importlib.util.find_spec("matplotlib") is None:
        raise UserError(f"{option} needs matplotlib: install it with `{PLOT_INSTALL}` (or `pip install matplotlib`)")


def format_scores(scores):
    """evaluate's metrics as a two-column table; a metric one class cannot give says so."""
    lines = [f"{'metric':<18}value"]
    for name in SCORES:
        if name in scores:
            shown = "n/a (the data hold one class)" if math.isnan(scores[name]) else f"{scores[name]:.4f}"
            lines.append(f"{name:<18}{shown}")
    if "confusion_matrix" in scores:
        (tn, fp), (fn, tp) = scores["confusion_matrix"]
        lines.append(f"{'confusion':<18}tn {tn}  fp {fp}  fn {fn}  tp {tp}")
    return "\n".join(lines)


def save_trained(output, model, tokenizer_config, record):
    """Write the model with its tokeniser's settings and how it was trained, or say it was
    not kept."""
    if output is None:
        print("the model was not saved (give --output FILE to keep it)")
        return
    save(output, model, extra={"tokenizer": tokenizer_config, **record})
    print(f"saved the model to {output}")


def kernel_messages():
    """A block that says when the first run compiles the Numba kernels, and how long
    that took (rank 0 only)."""
    return compile_messages() if launch_rank() == 0 else contextlib.nullcontext()
