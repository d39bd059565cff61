"""Crash safety of `minidl.io.save`: a process killed (SIGKILL) in the middle of a save
leaves the previous file at that path intact and loadable (and the temporary file it
leaves goes at the next save), and two processes saving to one path leave one whole
file. The savers are separate Python processes."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import minidl
from minidl import io, nn

REPO = Path(__file__).resolve().parent.parent
#: A child that saves the model of width WIDTH to PATH TIMES times; KILL_AT names where
#: it SIGKILLs itself: before the chunk of the file with that number is written (0 the
#: header's length, 1 the header with the checksum, 2-5 the four arrays), or "rename"
#: (after the fsync, before the temporary file replaces the old one), or "never".
SAVER = """
import os, signal, sys
import numpy as np
import minidl
from minidl import io, nn
from minidl.io import layout

path, width, kill_at, times = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
minidl.manual_seed(width)
model = minidl.Sequential([nn.Dense(width, activation="tanh"), nn.Dense(1, activation="sigmoid")])
model.build((None, 64))

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if kill_at == "rename":
    os.replace = lambda source, target: die()
elif kill_at != "never":
    chunks = layout.file_chunks
    def dying_chunks(*args):
        for count, chunk in enumerate(chunks(*args)):
            if count == int(kill_at):
                die()
            yield chunk
    layout.file_chunks = dying_chunks
print("ready", flush=True)
for _ in range(times):
    io.save(path, model)
"""


def saver(path, width, kill_at="never", times=1):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-c", SAVER, str(path), str(width), str(kill_at), str(times)],
                            env=env, stdout=subprocess.PIPE, text=True)


def saved_bytes(tmp_path, width):
    """The file a saver of `width` writes, saved by a child that is not killed."""
    path = tmp_path / f"reference-{width}.mdl"
    assert saver(path, width).wait(timeout=60) == 0
    return path.read_bytes()


def assert_whole(path, *candidates):
    """The file at `path` is one of the `candidates`, byte for byte, and loads."""
    data = path.read_bytes()
    assert any(data == candidate for candidate in candidates), f"{len(data)} bytes, none of the expected files"
    model = io.load(path).model
    assert np.isfinite(model.parameters()[0].numpy()).all()


def temporaries(folder):
    """The temporary files in `folder`."""
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


@pytest.mark.parametrize("kill_at", [1, 2, 4, 5, "rename"])
def test_a_save_killed_midway_leaves_the_previous_file_intact(tmp_path, kill_at):
    previous, path = saved_bytes(tmp_path, 8), tmp_path / "model.mdl"
    path.write_bytes(previous)
    child = saver(path, 32, kill_at)
    assert child.wait(timeout=60) == -signal.SIGKILL
    assert_whole(path, previous)
    assert len(temporaries(tmp_path)) == 1  # the killed save's own, which nothing could remove
    assert saver(path, 8).wait(timeout=60) == 0  # the next save to that path removes it
    assert temporaries(tmp_path) == [] and path.read_bytes() == previous


@pytest.mark.skipif(os.name != "posix", reason="the temporaries of dead savers are found with POSIX's kill(pid, 0)")
def test_a_save_removes_only_the_temporaries_of_dead_savers_of_its_path(tmp_path):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    host = socket.gethostname()
    names = {"dead": f".model.mdl.{host}-{ended.pid}.a1b2c3d4.tmp",
             "live": f".model.mdl.{host}-{running.pid}.a1b2c3d4.tmp",
             "other host": f".model.mdl.not-{host}-{ended.pid}.a1b2c3d4.tmp",
             "other path": f".other.mdl.{host}-{ended.pid}.a1b2c3d4.tmp"}
    try:
        for name in names.values():
            (tmp_path / name).write_bytes(b"partial")
        model = minidl.Sequential([nn.Dense(2)])
        model.build((None, 3))
        io.save(tmp_path / "model.mdl", model)
    finally:
        running.kill()
        running.wait()
    assert temporaries(tmp_path) == sorted(name for kind, name in names.items() if kind != "dead")
    assert_whole(tmp_path / "model.mdl", (tmp_path / "model.mdl").read_bytes())


def test_a_save_killed_at_random_moments_never_leaves_half_a_file(tmp_path):
    previous, new = saved_bytes(tmp_path, 8), saved_bytes(tmp_path, 512)
    path = tmp_path / "model.mdl"
    path.write_bytes(previous)
    for delay in np.random.default_rng(0).uniform(0, 0.2, 4):
        child = saver(path, 512, times=10**6)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(delay)  # somewhere inside one of the saves: the outcome must not depend on where
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        assert_whole(path, previous, new)


def test_two_processes_saving_to_one_path_leave_one_whole_file(tmp_path):
    first, second = saved_bytes(tmp_path, 8), saved_bytes(tmp_path, 512)
    path = tmp_path / "model.mdl"
    path.write_bytes(first)
    children = [saver(path, width, times=40) for width in (8, 512)]
    for child in children:
        assert child.stdout.readline().strip() == "ready"
    while any(child.poll() is None for child in children):
        assert_whole(path, first, second)  # a reader meanwhile sees one whole file or the other
    assert [child.returncode for child in children] == [0, 0]
    assert_whole(path, first, second)
    assert sorted(os.listdir(tmp_path)) == ["model.mdl", "reference-512.mdl", "reference-8.mdl"]  # no temporaries
