"""minidl.distributed: sharding and launch detection in this process; data-parallel fit,
failure handling and batch scoring under `mpiexec -n 2`, running the programs in
tests/distributed_scripts/. The MPI tests skip, saying why, where mpi4py is missing
(pip install -e ".[mpi]" brings it and mpiexec), and fail where it is installed but
two ranks cannot start (see `require_mpi`)."""
import functools
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
from minidl.distributed import (DEFAULT_TIMEOUT_SECONDS, Watchdog, find_mpiexec, launch_command, launch_rank,
                                launch_size, partition, resolve_group, shard_steps, watchdog_timeout)
from minidl.distributed.exchange import exchanged, pack_gradients, summed_gradient
from minidl.sparse import IndexedSlices
from minidl.train import evaluate, fit, predict
from minidl.train.loop import _epoch_steps

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent / "distributed_scripts"
TIMEOUT = 120  # seconds for one launched job; each takes a few seconds
ABORT_BOUND = 60  # seconds within which a job with a failing rank must have ended


def load_script(name):
    """A program of tests/distributed_scripts as a module (for its model and data)."""
    spec = importlib.util.spec_from_file_location(f"distributed_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------ in this process
@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 200), batch_size=st.integers(1, 20), size=st.integers(1, 5))
def test_shard_steps_use_every_sample_once_per_epoch(n, batch_size, size):
    if n < size:
        with pytest.raises(ValueError, match="cannot be shared among"):
            shard_steps(n, batch_size, 0, size)
        return
    plans = [shard_steps(n, batch_size, rank, size) for rank in range(size)]
    assert len({len(plan) for plan in plans}) == 1  # every rank takes part in every step
    positions = []
    for step in zip(*plans):
        (global_size,) = {step_size for _, step_size in step}
        sizes = [stop - start for (start, stop), _ in step]
        assert sum(sizes) == global_size and max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
        positions += [i for (start, stop), _ in step for i in range(start, stop)]
    assert sorted(positions) == list(range(n))


def test_shard_steps_take_batch_size_per_rank_and_join_a_short_last_step():
    plan = shard_steps(98, 16, 1, 2)
    assert [bounds for bounds, _ in plan] == [(16, 32), (48, 64), (81, 98)]
    assert [step_size for _, step_size in plan] == [32, 32, 34]  # 98 - 96 = 2 < 2 per rank: joined


@pytest.mark.parametrize("n, batch_size", [(80, 32), (97, 32), (33, 8), (5, 7)])
def test_one_process_shards_like_plain_fit(n, batch_size):
    assert shard_steps(n, batch_size, 0, 1) == _epoch_steps(n, batch_size, None)


def test_launch_is_read_from_the_launchers_variables():
    assert (launch_size({}), launch_rank({})) == (1, 0)
    assert (launch_size({"OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "3"}), launch_rank({"OMPI_COMM_WORLD_RANK": "3"})) == (4, 3)
    assert (launch_size({"PMI_SIZE": "2", "PMI_RANK": "1"}), launch_rank({"PMI_SIZE": "2", "PMI_RANK": "1"})) == (2, 1)


def test_a_plain_launch_stays_plain_and_never_imports_mpi4py():
    program = ("import sys; from minidl.distributed import resolve_group; "
               "assert resolve_group('auto') is None and resolve_group(None) is None; "
               "assert 'mpi4py' not in sys.modules")
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("OMPI_", "PMI_", "PMIX_", "MPI_", "MV2_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    subprocess.run([sys.executable, "-c", program], check=True, env=env, timeout=60)


def test_distributed_argument_is_checked():
    with pytest.raises(ValueError, match="distributed must be None, 'auto' or a ProcessGroup"):
        resolve_group("mpi")


# ------------------------------------------------------------ under mpiexec -n 2
@functools.cache
def mpi_unavailable():
    """Why `mpiexec -n 2` cannot run mpi4py here, or None when it can."""
    if find_mpiexec() is None:
        return 'no mpiexec beside this Python or on PATH (pip install -e ".[mpi]")'
    argv, env = launch_command(2, [sys.executable, "-c", "from mpi4py import MPI; MPI.COMM_WORLD.Barrier()"])
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "mpiexec -n 2 did not run a two-rank mpi4py program within 60 s"
    if done.returncode != 0:
        return f"mpiexec -n 2 cannot run mpi4py: {(done.stderr or done.stdout).strip()[-300:]}"
    return None


def require_mpi():
    """Skip where MPI is not installed; fail where it is but `mpiexec -n 2` cannot start.

    "Installed" means mpi4py can be imported: the `mpi` extra brings it with the MPICH
    wheel (mpiexec), and CI installs that extra, so there a 2-rank test that cannot
    start is a broken setup, not a reason to skip. The rule reads the installation, not
    a CI variable, so a developer with the extra installed learns the same, and one
    without it still gets the skip and what to install."""
    reason = mpi_unavailable()
    if reason is None:
        return
    if importlib.util.find_spec("mpi4py") is not None:
        pytest.fail(f"mpi4py is installed, but {reason}")
    pytest.skip(f"{reason} (mpi4py is not installed)")


def mpirun(script, *args, timeout=TIMEOUT, environment=()):
    """Run tests/distributed_scripts/<script>.py in 2 ranks, with the `environment`
    variables added; (CompletedProcess, seconds)."""
    require_mpi()
    argv, env = launch_command(2, [sys.executable, str(SCRIPTS / f"{script}.py"), *map(str, args)])
    env.update(environment)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    return done, time.perf_counter() - start


def rank_results(folder, rank):
    arrays = np.load(folder / f"rank{rank}.npz")
    return {name: arrays[name] for name in arrays.files}, json.loads((folder / f"rank{rank}.json").read_text())


@pytest.fixture(scope="module", params=[("every", "1"), ("root", "1"), ("every", "0")],
                ids=["data on every rank", "data on rank 0", "data on every rank, allreduce"])
def two_rank_training(tmp_path_factory, request):
    """train_mlp.py run once in 2 ranks, with the data on every rank or on rank 0 alone,
    exchanging gradients through shared memory (the default on one node) or by
    allreduce (MINIDL_MPI_SHARED_MEMORY=0): (its folder, the finished job, the exchange
    expected)."""
    holder, shared = request.param
    folder = tmp_path_factory.mktemp("train_mlp")
    done, _ = mpirun("train_mlp", folder, holder, environment={"MINIDL_MPI_SHARED_MEMORY": shared})
    assert done.returncode == 0, done.stderr
    return folder, done, "shared memory" if shared == "1" else "allreduce"


@pytest.fixture
def float64():
    minidl.set_default_dtype(np.float64)
    yield
    minidl.set_default_dtype(np.float32)


def test_two_ranks_at_16_match_one_process_at_32(two_rank_training, float64):
    folder, _, _ = two_rank_training
    script = load_script("train_mlp")
    model, _ = script.make_model()
    x, y, x_val, y_val = script.make_data()
    optimizer = script.OPTIMIZER(model.parameters())
    history = fit(model, x, y, epochs=script.EPOCHS, batch_size=2 * script.BATCH_PER_RANK, optimizer=optimizer,
                  validation_data=(x_val, y_val), verbose=0)
    expected = [p.numpy() for p in model.parameters()]
    expected_state = optimizer.state_dict()
    for rank in (0, 1):
        arrays, results = rank_results(folder, rank)
        got = [arrays[f"arr_{i}"] for i in range(len(expected))]
        for want, have in zip(expected, got):
            np.testing.assert_allclose(have, want, rtol=0, atol=1e-10)
        # the whole optimiser state on every rank, though each updates its part of the parameters
        state = {name.removeprefix("optimizer "): arrays[name] for name in arrays if name.startswith("optimizer ")}
        assert state.keys() == expected_state.keys()
        for name, want in expected_state.items():
            np.testing.assert_allclose(state[name], want, rtol=0, atol=1e-10, err_msg=name)
        assert results["history"].keys() == history.keys() and results["floats"]  # Python floats, as in one process
        for name, values in results["history"].items():  # metrics over all ranks' samples
            np.testing.assert_allclose(values, history[name], rtol=0, atol=1e-10, err_msg=name)
    first, second = rank_results(folder, 0)[0], rank_results(folder, 1)[0]
    assert all(np.array_equal(first[name], second[name]) for name in first)  # replicas stay identical


def test_ranks_on_one_node_exchange_gradients_through_shared_memory_unless_told(two_rank_training):
    folder, _, exchange = two_rank_training
    assert [rank_results(folder, rank)[1]["exchange"] for rank in (0, 1)] == [exchange, exchange]
    assert rank_results(folder, 1)[1]["private"]  # out of the shared memory after fit


def test_the_shared_exchange_adds_the_other_ranks_slots_to_the_owners_gradients():
    params = [minidl.Tensor(np.zeros((2, 3)), requires_grad=True), minidl.Tensor(np.zeros(4), requires_grad=True)]
    params[0].grad, params[1].grad = np.full((2, 3), 2.0), None
    flat = np.full(6 + 4 + 2 + 2 + 1, np.nan)
    pack_gradients(flat, params, 0.25, (True,))
    np.testing.assert_array_equal(flat, [0.5] * 6 + [0.0] * 4 + [1, 0] + [0, 0] + [1])
    flat = np.full(6 + 4 + 2 + 2, np.nan)
    pack_gradients(flat, params, 1.0, (), kept={0})  # the owner's own part: left alone, flagged
    assert np.isnan(flat[:6]).all() and flat[6:].tolist() == [0.0] * 4 + [1, 0] + [0, 0]
    params[0].grad = IndexedSlices(np.array([1]), np.array([[1.0, 2.0, 4.0]]), (2, 3))  # row 1 alone
    pack_gradients(flat, params, 0.5, ())
    np.testing.assert_array_equal(flat, [0, 0, 0, 0.5, 1, 2] + [0.0] * 4 + [1, 0] + [1, 0])
    params[0].grad = own = np.full((2, 3), 2.0)
    summed = summed_gradient(params[0], 1.0, [np.arange(6.0), 10 * np.arange(6.0)])  # two other ranks
    assert summed is own  # written over the rank's own gradient array, no fresh memory
    np.testing.assert_array_equal(summed, 2 + 11 * np.arange(6.0).reshape(2, 3))
    params[0].grad = np.full((2, 3), 2.0)
    np.testing.assert_array_equal(summed_gradient(params[0], 0.5, [np.ones(6)]), np.full((2, 3), 2.0))
    np.testing.assert_array_equal(summed_gradient(params[1], 1.0, [np.arange(4.0)]), np.arange(4.0))  # none of its own
    params[0].grad = IndexedSlices(np.array([0]), np.array([[1.0, 1.0, 1.0]]), (2, 3))
    np.testing.assert_array_equal(summed_gradient(params[0], 1.0, [np.arange(6.0)]), [[1, 2, 3], [3, 4, 5]])


def test_a_row_sparse_gradient_comes_back_as_the_rows_the_ranks_used():
    summed = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, -2.0]])
    grad = exchanged(summed, 2, 2)  # both ranks' gradients row-sparse: the rows some rank used
    assert isinstance(grad, IndexedSlices) and grad.dense_shape == (4, 2)
    np.testing.assert_array_equal(grad.indices, [1, 3])
    np.testing.assert_array_equal(grad.values, [[1.0, 0.0], [0.0, -2.0]])
    assert exchanged(summed, 2, 1) is summed  # one rank's was dense: the dense sum
    assert exchanged(summed, 0, 0) is None  # no rank had one


def test_every_sample_is_trained_on_once_per_epoch(two_rank_training):
    folder, _, _ = two_rank_training
    script = load_script("train_mlp")
    ids = [rank_results(folder, rank)[1]["ids"] for rank in (0, 1)]
    assert len(ids[0]) == len(ids[1]) == script.EPOCHS
    for epoch in range(script.EPOCHS):
        assert len(ids[0][epoch]) == len(ids[1][epoch]) == script.TRAIN // 2
        assert sorted(ids[0][epoch] + ids[1][epoch]) == list(range(script.TRAIN))
    assert ids[0][0] != ids[0][1]  # shuffled anew each epoch


def test_only_rank_zero_writes_checkpoints_logs_and_progress(two_rank_training):
    folder, done, _ = two_rank_training
    epochs = load_script("train_mlp").EPOCHS
    assert sorted(path.name for path in folder.glob("checkpoint-*")) == [
        f"checkpoint-rank0-{epoch}.mdl" for epoch in range(1, epochs + 1)]
    assert sorted(path.name for path in folder.glob("log-*")) == ["log-rank0.csv"]
    assert len((folder / "log-rank0.csv").read_text().splitlines()) == 1 + epochs
    assert done.stderr.count("Epoch 1/") == 1 and done.stderr.count(f"Epoch {epochs}/") == 1


def test_dropout_streams_differ_per_rank_and_repeat_per_seed(tmp_path):
    runs = []
    for name in ("first", "again"):
        (tmp_path / name).mkdir()
        done, _ = mpirun("dropout_streams", tmp_path / name, 5)
        assert done.returncode == 0, done.stderr
        runs.append([rank_results(tmp_path / name, rank) for rank in (0, 1)])
    (first_state, first_draws), (second_state, second_draws) = runs[0]
    assert first_draws != second_draws  # the ranks drew their dropout masks from different streams
    assert all(np.array_equal(first_state[name], second_state[name]) for name in first_state)  # incl. batch-norm statistics
    again = runs[1]
    assert [draws for _, draws in again] == [first_draws, second_draws]
    assert all(np.array_equal(first_state[name], again[0][0][name]) for name in first_state)


def test_a_stop_asked_on_one_rank_stops_every_rank_after_the_same_step(tmp_path):
    done, _ = mpirun("stop_on_one_rank", tmp_path)
    assert done.returncode == 0, done.stderr
    (first, first_run), (second, second_run) = rank_results(tmp_path, 0), rank_results(tmp_path, 1)
    assert first_run == second_run == {"steps": 3, "epochs": [0]}  # as one process stops after batch 2
    assert all(np.array_equal(first[name], second[name]) for name in first)


@pytest.mark.parametrize("mode", ["raise", "exit"])
def test_a_failing_rank_stops_the_job_within_a_bounded_time(mode):
    done, seconds = mpirun("fail_rank", mode, timeout=ABORT_BOUND)
    assert done.returncode != 0
    assert seconds < ABORT_BOUND
    assert "finished training" not in done.stdout
    if mode == "raise":
        assert "minidl: rank 1 of 2 failed; stopping every rank" in done.stderr
        assert "RuntimeError: rank 1 cannot read its shard" in done.stderr


def test_a_rank_that_stops_answering_ends_the_job_after_the_watchdogs_timeout():
    done, seconds = mpirun("hang_rank", timeout=ABORT_BOUND, environment={"MINIDL_MPI_TIMEOUT": "2"})
    assert done.returncode != 0 and seconds < ABORT_BOUND
    assert "finished training" not in done.stdout
    assert re.search(r"minidl: rank 0 of 2 waited \d+ s in an? [\w ]+ for the other ranks: one of them has stopped "
                     r"answering", done.stderr), done.stderr
    assert "MINIDL_MPI_TIMEOUT sets how long a rank waits (now 2 s" in done.stderr


def test_the_watchdog_calls_back_once_a_wait_outlasts_its_timeout():
    fired = threading.Event()
    calls = []
    dog = Watchdog(0.05, lambda what, seconds: (calls.append((what, seconds)), fired.set()))
    with dog.waiting("a test wait"):
        assert fired.wait(30)
    (what, seconds), = calls
    assert what == "a test wait" and seconds >= 0.05


def test_the_watchdog_timeout_comes_from_the_environment():
    assert watchdog_timeout({}) == DEFAULT_TIMEOUT_SECONDS == 300
    assert watchdog_timeout({"MINIDL_MPI_TIMEOUT": "2.5"}) == 2.5
    assert watchdog_timeout({"MINIDL_MPI_TIMEOUT": "0"}) == 0
    for bad in ("soon", "-1", "nan"):
        with pytest.raises(ValueError, match="MINIDL_MPI_TIMEOUT"):
            watchdog_timeout({"MINIDL_MPI_TIMEOUT": bad})


@pytest.mark.parametrize("case, messages", [
    ("labels", ["y has 31 targets for 32 samples", "rank 0: y has 31 targets for 32 samples"]),  # RootFailed
    ("rank 1", ["distributed: ranks [0] passed no data and the others did"] * 2),
])
def test_with_the_data_on_rank_0_its_errors_reach_every_rank(tmp_path, case, messages):
    done, _ = mpirun("root_data_errors", tmp_path, case)
    assert done.returncode == 0, done.stderr
    for rank, message in enumerate(messages):
        assert message in json.loads((tmp_path / f"rank{rank}.json").read_text())


@pytest.mark.parametrize("holder", ["every", "root"])
def test_batch_scoring_over_two_ranks_matches_one_process(tmp_path, holder):
    done, _ = mpirun("score", tmp_path, holder)
    assert done.returncode == 0, done.stderr
    script = load_script("score")
    model, x, y = script.make_model_and_data()
    expected = predict(model, x, batch_size=script.BATCH)
    scores = evaluate(model, x, y, batch_size=script.BATCH)
    for rank in (0, 1):
        arrays, got = rank_results(tmp_path, rank)
        np.testing.assert_array_equal(arrays["probabilities"], expected)  # in input order, on every rank
        assert got.keys() == scores.keys()
        for name, value in scores.items():
            if isinstance(value, float):
                assert got[name] == pytest.approx(value, rel=1e-6, abs=1e-7), name
            else:
                assert got[name] == json.loads(json.dumps(value)), name


# ------------------------------------------------------------ the command line
def run_cli(argv, ranks=None, stdin=None):
    """`python -m minidl ARGV`, in `ranks` MPI ranks or (None) as one plain process,
    reading the file `stdin` (or nothing)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "minidl", *map(str, argv)]
    if ranks is not None:
        require_mpi()
        command, launch_env = launch_command(ranks, command)
        env.update(launch_env, PYTHONPATH=env["PYTHONPATH"])
    with open(stdin or os.devnull) as stream:
        return subprocess.run(command, env=env, stdin=stream, capture_output=True, text=True, timeout=TIMEOUT)


def test_mpiexec_minidl_train_then_predict_file_in_input_order(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["url,isMalicious"]
    for i in range(64):  # benign words under .com, malicious digits and a login path
        digits = "".join(map(str, rng.integers(0, 10, 5)))
        rows.append(f"shop{i}.com/docs/index.html,0" if i % 2 else f"a{digits}.xyz/login/verify.php?id={digits},1")
    (tmp_path / "urls.csv").write_text("\n".join(rows) + "\n")
    model = tmp_path / "model.mdl"
    trained = run_cli(["train", "--data", tmp_path / "urls.csv", "--arch", "conv_fully", "--epochs", "2",
                       "--batch-size", "8", "--max-len", "24", "--emb-dim", "4", "--filters", "4", "--hidden-units", "8",
                       "--output", model, "--verbose", "2", "--seed", "1"], ranks=2)
    assert trained.returncode == 0, trained.stderr
    assert trained.stdout.count("saved the model") == 1 and trained.stdout.count("test set") == 1
    assert trained.stderr.count("Epoch 2/2") == 1 and model.is_file()

    lines = [row.split(",")[0] for row in rows[1:24]]  # 23 URLs: the ranks' blocks differ in size
    (tmp_path / "score.txt").write_text("\n".join(lines) + "\n")
    argv = ["predict", "--model", model, "--file", tmp_path / "score.txt", "--batch-size", "4"]
    plain, spread = run_cli(argv), run_cli(argv, ranks=2)
    assert plain.returncode == 0 and spread.returncode == 0, plain.stderr + spread.stderr
    assert [line.split("\t")[2] for line in spread.stdout.splitlines()] == lines
    assert spread.stdout == plain.stdout
    assert spread.stderr.count("scored 23 URLs") == 1 and "on 2 ranks" in spread.stderr

    # From stdin, which only rank 0 reads, in several chunks (the last shorter than the ranks: rank 1's block is empty).
    chunked = run_cli(["predict", "--model", model, "--file", "-", "--chunk-size", "11"], ranks=2,
                      stdin=tmp_path / "score.txt")
    assert chunked.returncode == 0 and chunked.stdout == plain.stdout, chunked.stderr


def test_mpiexec_minidl_predict_names_a_bad_line_and_ends_every_rank(tmp_path):
    (tmp_path / "urls.csv").write_text("url,isMalicious\n" + "".join(f"s{i}.com,{i % 2}\n" for i in range(40)))
    model = tmp_path / "model.mdl"
    trained = run_cli(["train", "--data", tmp_path / "urls.csv", "--arch", "simple_lstm", "--epochs", "1",
                       "--max-len", "12", "--emb-dim", "4", "--lstm-units", "3", "--output", model, "--verbose", "0"])
    assert trained.returncode == 0, trained.stderr
    (tmp_path / "score.txt").write_bytes(b"a.com\nb.com\nc\xff.com\n")
    done = run_cli(["predict", "--model", model, "--file", tmp_path / "score.txt", "--chunk-size", "2"], ranks=2)
    assert done.returncode == 1 and len(done.stdout.splitlines()) == 2
    assert "line 3: not UTF-8 text" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("script, on_rank_1, on_rank_0", [
    ("diverge", "the loss is nan", "another rank's loss or arithmetic went wrong"),
    ("update_diverges", "its arithmetic went out of range (overflow", "another rank's update went wrong"),
], ids=["in the loss", "in the update"])
def test_a_step_that_diverges_on_one_rank_stops_every_rank_there_without_abort(tmp_path, script, on_rank_1,
                                                                                 on_rank_0):
    done, _ = mpirun(script, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "stopping every rank" not in done.stderr
    bad_step = load_script(script).BAD_STEP
    first, second = (json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1))
    assert (first["epoch"], first["step"]) == (second["epoch"], second["step"]) == (1, bad_step + 1)
    assert on_rank_1 in second["message"]
    assert on_rank_0 in first["message"]


def test_ranks_that_built_different_models_are_refused_on_every_rank(tmp_path):
    done, _ = mpirun("different_models", tmp_path)
    assert done.returncode == 0, done.stderr
    for rank in (0, 1):
        message = json.loads((tmp_path / f"rank{rank}.json").read_text())["message"]
        assert "the ranks built different models" in message


def test_the_update_is_split_among_the_ranks_by_size_the_same_on_every_rank():
    sizes = [1_048_576, 1024, 1_048_576, 256, 5, 1024]
    owners = partition(sizes, 2)
    assert owners[0] != owners[2]  # the two large ones apart
    loads = [sum(size for size, owner in zip(sizes, owners) if owner == rank) for rank in (0, 1)]
    assert abs(loads[0] - loads[1]) <= max(sizes[1:2] + sizes[3:])
    assert partition(sizes, 2) == owners and partition(sizes, 1) == [0] * len(sizes)
    assert sorted(set(partition(sizes, 3))) == [0, 1, 2]


def test_mpiexec_minidl_train_reads_the_data_on_rank_0_alone(tmp_path):
    (tmp_path / "urls.csv").write_text("url,isMalicious\na.com,0\nb.com,1,extra\n")
    done = run_cli(["train", "--data", tmp_path / "urls.csv", "--epochs", "1"], ranks=2)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()  # rank 0's; rank 1 heard of it from rank 0 and ends quietly
    assert "line 3: 3 fields, the header has 2" in line and "rank 0:" not in line
