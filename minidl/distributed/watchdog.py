"""The watchdog: a rank that waits too long in one collective says where and ends the job."""
import contextlib
import os
import threading
import time

#: Seconds a rank waits inside one collective operation for the others before the
#: watchdog ends the job; MINIDL_MPI_TIMEOUT overrides it (0 turns the watchdog off).
DEFAULT_TIMEOUT_SECONDS = 300.0
TIMEOUT_VARIABLE = "MINIDL_MPI_TIMEOUT"


def watchdog_timeout(environ=None):
    """The watchdog's timeout in seconds: MINIDL_MPI_TIMEOUT, else DEFAULT_TIMEOUT_SECONDS;
    0 means no watchdog."""
    text = (os.environ if environ is None else environ).get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also NaN
        raise ValueError(f"{TIMEOUT_VARIABLE}={text!r}: expected a number of seconds >= 0 (0 turns the watchdog off)")
    return seconds


class Watchdog:
    """A daemon thread that calls `on_timeout(what, seconds)` once this process has
    waited inside one `waiting(what)` block for `timeout` seconds: a collective that
    another rank never joins because it hangs (a dead lock, a stalled file system) rather
    than fails. MPI calls release the GIL, so the thread runs while the main thread
    blocks in one; it wakes a few times per timeout, not per collective."""

    def __init__(self, timeout, on_timeout):
        self.timeout, self.on_timeout = float(timeout), on_timeout
        self._waiting = None  # (what, since) while inside a block
        self._thread = None

    @contextlib.contextmanager
    def waiting(self, what):
        if not self.timeout:
            yield
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="minidl-mpi-watchdog", daemon=True)
            self._thread.start()
        self._waiting = (what, time.monotonic())
        try:
            yield
        finally:
            self._waiting = None

    def _watch(self):
        interval = min(1.0, self.timeout / 4)
        while True:
            time.sleep(interval)
            waiting = self._waiting
            if waiting is not None and time.monotonic() - waiting[1] >= self.timeout:
                self.on_timeout(waiting[0], time.monotonic() - waiting[1])
                return
