"""Atomic saves: a hidden temporary file beside the path, fsynced and renamed over it,
so a reader (or a process killed midway) sees the old file or the new one, never half
of one; the next save to a path removes the temporaries that killed saves left."""
import contextlib
import os
import re
import socket
import tempfile


def _temporary_stem(name):
    """How the names of the temporary files that will replace `name` start, before the
    writer's pid: hidden, and naming this host."""
    return f".{name}.{socket.gethostname()}-"


def _remove_dead_temporaries(directory, name):
    """Remove the temporary files that processes of this host which no longer run (a
    save killed midway) left beside `name`; a live writer's, or another host's, stay.
    POSIX only (Windows' os.kill would end the process it asks about)."""
    if os.name != "posix":
        return
    pattern = re.compile(re.escape(_temporary_stem(name)) + r"(\d+)\..*\.tmp")
    for entry in os.listdir(directory):
        match = pattern.fullmatch(entry)
        pid = None if match is None else int(match.group(1))
        if pid is None or pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:  # no such process: the writer is gone
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, entry))
        except (PermissionError, OverflowError):  # alive under another user; not a pid
            pass


def atomic_write(path, chunks):
    """Write `chunks` to a temporary file beside `path`, fsync it, then rename it over
    `path`: readers see the old file or the new one, never half of one. Temporaries
    that killed saves to `path` left behind go first."""
    path = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"save: {path} is a directory")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"save: the folder {directory} does not exist")
    _remove_dead_temporaries(directory, os.path.basename(path))
    descriptor, temporary = tempfile.mkstemp(prefix=f"{_temporary_stem(os.path.basename(path))}{os.getpid()}.",
                                             suffix=".tmp", dir=directory)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    # Persist the rename itself (POSIX); not possible on every platform or filesystem.
    with contextlib.suppress(OSError, AttributeError):
        directory_descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_descriptor)
        finally:
            os.close(directory_descriptor)
