"""benchmarks/compare.py and its helpers, without timing anything: the options, the
interleaving's order and thread switches, the tables from a made-up result, the
generated URL file and the end-to-end path on a tiny input. PyTorch is a
benchmark-only dependency: what needs it is skipped without it, and --help must
answer without it."""
import json
import math
import subprocess
import sys
from contextlib import redirect_stderr
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from benchmarks import compare, end_to_end, report, timing
from minidl.data import CharTokenizer, load_url_csv, normalize_url
from minidl.kernels import parallelism

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------- options
def test_defaults_measure_two_threads_and_one_with_every_model():
    args = compare.build_parser().parse_args([])
    assert args.threads == (2, 1)
    assert args.models == list(compare.MODEL_NAMES)
    assert not (args.quick or args.no_memory or args.no_end_to_end)
    assert timing.repeats(args) == 15
    assert timing.repeats(compare.build_parser().parse_args(["--quick"])) == 5


@pytest.mark.parametrize("text, counts", [("1", (1,)), ("4,2,1", (4, 2, 1)), ("2, 1", (2, 1))])
def test_threads_take_a_list(text, counts):
    assert compare.build_parser().parse_args(["--threads", text]).threads == counts


@pytest.mark.parametrize("argv", [["--threads", "2,x"], ["--threads", "0"], ["--threads", "2,2"],
                                  ["--blas-threads", "1"], ["--models", "resnet"]])
def test_bad_options_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        compare.build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["benchmarks.compare", "benchmarks.report"])
def test_help_answers_without_pytorch(module):
    # sys.modules["torch"] = None makes every `import torch` raise ImportError
    code = (f"import runpy, sys; sys.modules['torch'] = None; sys.argv = ['{module}', '--help']; "
            f"runpy.run_module('{module}', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_command_line_names_chrt_under_sched_fifo(monkeypatch):
    monkeypatch.setattr(timing, "scheduler", lambda: "SCHED_FIFO priority 10")
    assert compare.command_line(["--quick"]) == "chrt -f 10 python -m benchmarks.compare --quick"
    monkeypatch.setattr(timing, "scheduler", lambda: "SCHED_OTHER nice 19")
    assert compare.command_line(["--models", "conv_fully"]) == "python -m benchmarks.compare --models conv_fully"


def test_the_scheduler_is_named():
    assert timing.scheduler().split()[0] in ("SCHED_OTHER", "SCHED_BATCH", "SCHED_IDLE", "SCHED_FIFO", "SCHED_RR")


# ---------------------------------------------------------------- interleaving
def test_interleaved_prepares_every_sample_of_its_case_before_running_it():
    log = []
    cases = {label: (lambda label=label: log.append(("run", label))) for label in ("a", "b", "c")}
    measured = timing.interleaved(cases, repeats=3, warmup=1, min_sample_s=0, prepare=lambda label: log.append(
        ("prepare", label)))
    assert set(measured) == {"a", "b", "c"} and all(t.samples == sorted(t.samples) for t in measured.values())
    assert all(len(t.samples) == 3 for t in measured.values())
    # warm-up a, b, c; then each repetition in an order rotated by one
    order = [label for step, label in log if step == "run"]
    assert order == ["a", "b", "c"] + ["a", "b", "c"] + ["b", "c", "a"] + ["c", "a", "b"]
    # every run (one call per sample here, as min_sample_s is 0) right after its own prepare
    for index, (step, label) in enumerate(log):
        if step == "run":
            assert log[index - 1] == ("prepare", label)


def test_set_threads_reaches_minidl_one_switch(monkeypatch):
    for key in ("threads", "applied"):
        monkeypatch.setitem(parallelism._state, key, parallelism._state[key])
    settings = timing.thread_settings([1])
    assert settings["1"]["minidl"] == 1 and settings["1"]["numba"] == 1
    assert settings["1"]["blas"] and set(settings["1"]["blas"]) == {1}


# --------------------------------------------------------------------- tables
def _timing(ms, gflops):
    return {"median_ms": ms, "q1_ms": ms * 0.9, "q3_ms": ms * 1.1, "samples": 5, "gflops": gflops,
            "peak_fraction": gflops / 100.0}


def _cell(ours_ms, theirs_ms):
    return {"minidl": _timing(ours_ms, 40.0), "torch": _timing(theirs_ms, 30.0), "ratio": ours_ms / theirs_ms}


def _end_to_end_cell(ours, theirs, step):
    minidl = dict(_timing(ours * 4500, 0.0), ms_per_sample=ours, phases_ms={"load": 20.0, "tokenise": 5.0,
                                                                            "fit": ours * 4500 - 25.0})
    return {"minidl": minidl, "torch": dict(_timing(theirs * 4500, 0.0), ms_per_sample=theirs),
            "vs_torch": ours / theirs, "step_ms_per_sample": step, "vs_step": ours / step}


@pytest.fixture
def record():
    """A made-up run of one model on 2 threads (the default) and 1."""
    return {
        "command": "chrt -f 10 python -m benchmarks.compare --quick --models conv_fully",
        "environment": {"cpu_count": 2, "scheduler": "SCHED_FIFO priority 10", "load_average_1min": 4.2},
        "threads": ["2", "1"], "default_threads": "2", "matmul_peak_gflops": {"2": 100.0, "1": 55.0},
        "rows": [{"model": "conv_fully", "row": "train b32", "flops": 1e9,
                  "by_threads": {"2": _cell(12.0, 10.0), "1": _cell(18.0, 20.0)}},
                 {"model": "conv_fully", "row": "infer b1", "flops": 1e6,
                  "by_threads": {"2": _cell(0.5, 1.0), "1": _cell(0.4, 0.8)}}],
        "memory": {"threads": "2", "batch": 256,
                   "rows": [{"model": "conv_fully", "minidl_mib": 80.0, "torch_mib": 100.0, "ratio": 0.8}]},
        "end_to_end": {"csv_rows": 3000, "epochs": 2, "batch_size": 32, "train_samples": 2250,
                       "rows": [{"model": "conv_fully",
                                 "by_threads": {"2": _end_to_end_cell(0.5, 0.4, 0.375), "1": _end_to_end_cell(
                                     0.6, 0.7, 0.5625)}}]},
    }


def test_thread_labels():
    assert report.thread_label("2", "2") == "2 threads (default)"
    assert report.thread_label("1", "2") == "1 thread"


def test_text_rows_line_up_under_their_header(record):
    header = report.row_header(record["threads"], "2")
    assert "2 threads (default)" in header[0] and "1 thread" in header[0]
    line = report.format_row(record["rows"][0], record["threads"])
    assert len(line) == len(header[1]) == len(header[0])
    assert line.split()[:7] == ["conv_fully", "train", "b32", "12.000", "10.000", "1.20", "40.0"]
    assert "40.0 ( 40%)     30.0 ( 30%)" in line
    assert "18.000" in line and "0.90" in line
    e2e_header = report.end_to_end_header(record["end_to_end"], record["threads"], "2")
    e2e_line = report.format_end_to_end(record["end_to_end"]["rows"][0], record["threads"])
    assert len(e2e_line) == len(e2e_header[-1])
    assert e2e_line.split()[1:7] == ["0.500", "0.400", "1.25", "0.375", "1.33", "25.0"]
    assert report.format_memory(record["memory"]["rows"][0]).split() == ["conv_fully", "80.0", "100.0", "0.80"]


def test_the_summary_counts_the_rows_that_meet_the_bar(record):
    assert report.bar_summary(record) == [
        "2 threads (default): 1 of 2 rows at or below 1.00, worst 1.20 (conv_fully train b32)",
        "1 thread: 2 of 2 rows at or below 1.00, worst 0.90 (conv_fully train b32)",
        "peak memory: 1 of 1 models at or below 1.00",
        "end to end, per sample: 0 of 2 at or below 1.00 against the training step, "
        "1 of 2 at or below 1.00 against PyTorch's loop"]


def test_the_bar_is_judged_as_printed():
    assert report.meets_bar(1.004) and not report.meets_bar(1.006)
    assert report._ratio(1.004) == "1.00" and report._ratio(1.006) == "**1.01**"


def test_markdown_tables(record):
    text = report.markdown(record)
    assert "chrt -f 10 python -m benchmarks.compare --quick --models conv_fully" in text
    tables = {}
    for line in text.splitlines():
        if line.startswith("|"):
            tables.setdefault(line.count("|"), []).append(line)
    rows = next(lines for lines in tables.values() if "train b32" in lines[2])
    assert rows[0].count("|") == 2 + 2 * 5 + 1  # model, row, five columns per thread count
    assert rows[2] == ("| conv_fully | train b32 | 12.000 | 10.000 | **1.20** | 40.0 (40%) | 30.0 (30%) "
                       "| 18.000 | 20.000 | 0.90 | 40.0 (40%) | 30.0 (30%) |")
    assert "| conv_fully | 80.0 | 100.0 | 0.80 |" in text
    assert "| conv_fully | 0.500 | 0.400 | **1.25** | 0.375 | **1.33** | 25.0 | 0.600 | 0.700 | 0.86 |" in text
    assert "- 1 thread: 2 of 2 rows at or below 1.00" in text
    assert json.loads(text.split("```json\n", 1)[1].split("```", 1)[0]) == record["environment"]


def test_markdown_without_memory_or_end_to_end(record):
    record.update(memory=None, end_to_end=None)
    text = report.markdown(record)
    assert "Peak memory" not in text and "End to end" not in text and "train b32" in text


def test_write_markdown_fills_between_the_markers_and_keeps_the_rest(tmp_path, capsys):
    document = tmp_path / "benchmarks.md"
    begin, end = report.MARKERS
    document.write_text(f"# Benchmarks\n\nintro\n\n{begin}\nold table\n{end}\n\n## After\n")
    report.write_markdown(document, "new table\n")
    report.write_markdown(document, "newer table\n")
    assert document.read_text() == f"# Benchmarks\n\nintro\n\n{begin}\nnewer table\n{end}\n\n## After\n"
    bare = tmp_path / "table.md"
    report.write_markdown(bare, "a table\n")
    assert bare.read_text() == "a table\n"
    assert f"wrote {bare}" in capsys.readouterr().out


def test_report_command_writes_the_docs_table_from_a_saved_run(record, tmp_path):
    saved, document = tmp_path / "compare.json", tmp_path / "table.md"
    saved.write_text(json.dumps(record))
    assert report.main([str(saved), str(document)]) == 0
    assert document.read_text() == report.markdown(record)


# ----------------------------------------------------------------- end to end
def test_generated_urls_are_seeded_labelled_and_load_like_a_data_set(tmp_path):
    first = end_to_end.write_url_csv(tmp_path / "a.csv", rows=200, seed=3)
    again = end_to_end.write_url_csv(tmp_path / "b.csv", rows=200, seed=3)
    other = end_to_end.write_url_csv(tmp_path / "c.csv", rows=200, seed=4)
    assert first.read_text() == again.read_text() != other.read_text()
    assert first.read_text().splitlines()[0] == "url,isMalicious"
    urls, labels, loaded = load_url_csv(first)
    assert len(urls) == 200 and loaded.n_skipped == 0
    assert set(np.unique(labels)) == {0, 1} and 0.3 < labels.mean() < 0.7
    assert len(set(urls)) == 200 and all("." in url and " " not in url for url in urls)
    lengths = [len(url) for url in urls]
    assert min(lengths) >= 6 and np.median(lengths) > 25
    _, unknown = CharTokenizer().encode([normalize_url(url) for url in urls], return_unknown=True)
    assert unknown.sum() == 0


def test_the_split_holds_out_a_quarter_for_validation(tmp_path):
    path = end_to_end.write_url_csv(tmp_path / "urls.csv", rows=200)
    (x_train, y_train), (x_val, y_val), tokenizer, phases = end_to_end.load_and_split(path)
    assert x_train.shape == (150, 75) and x_val.shape == (50, 75) and len(y_train) == 150 and len(y_val) == 50
    assert tokenizer.vocab_size == 101 and set(phases) == {"load", "tokenise"}


def test_minidl_path_trains_from_the_csv_and_draws_its_bar_out_of_sight(tmp_path, capsys):
    path = end_to_end.write_url_csv(tmp_path / "urls.csv", rows=60)
    phases = []
    run = end_to_end.minidl_run(path, "conv_fully", epochs=1, batch_size=16, phases=phases)
    run()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert len(phases) == 1 and set(phases[0]) == {"load", "tokenise", "fit"}
    assert all(seconds > 0 for seconds in phases[0].values())


def test_the_terminal_buffer_gets_the_redrawn_bar():
    from minidl.train.progress import ProgressBar

    buffer = end_to_end._Terminal()
    with redirect_stderr(buffer):
        bar = ProgressBar(10, 1, 1, refresh=0)
    bar.update(5, {"loss": 0.5})
    bar.finish({"loss": 0.4})
    assert bar.interactive and buffer.getvalue().count("\r") == 2


def test_batches_join_a_last_single_sample_as_fit_does():
    assert end_to_end._batches(65, 32) == [(0, 32), (32, 65)]
    assert end_to_end._batches(64, 32) == [(0, 32), (32, 64)]
    assert end_to_end._batches(1, 32) == [(0, 1)]


def test_pytorch_loop_trains_on_the_same_arrays(tmp_path):
    pytest.importorskip("torch", reason="PyTorch is a benchmark-only dependency")
    path = end_to_end.write_url_csv(tmp_path / "urls.csv", rows=60)
    train, validation, tokenizer, _ = end_to_end.load_and_split(path)
    loss, val_loss, val_accuracy = end_to_end.torch_run("conv_fully", train, validation, tokenizer.vocab_size,
                                                        epochs=1, batch_size=16)()
    assert all(math.isfinite(value) for value in (loss, val_loss)) and 0 <= val_accuracy <= 1


def test_the_end_to_end_row_is_held_to_this_run_s_training_step(record):
    assert compare._step_ms_per_sample(record["rows"], "conv_fully", "2") == pytest.approx(12.0 / 32)
    assert compare._step_ms_per_sample(record["rows"], "conv_fully", "1") == pytest.approx(18.0 / 32)



def test_the_docs_page_has_the_markers_the_table_goes_between(record, tmp_path):
    page = tmp_path / "benchmarks.md"
    original = (REPO / "docs" / "benchmarks.md").read_text()
    page.write_text(original)
    report.write_markdown(page, report.markdown(record))
    filled = page.read_text()
    assert filled.startswith(original.split(report.MARKERS[0])[0])
    assert filled.endswith(report.MARKERS[1] + original.split(report.MARKERS[1])[1])
    assert "| conv_fully | train b32 |" in filled


# ------------------------------------------------------------------- scaling
def scaling_round(one, two, pair, lock, stalled=(0.0, 0.01, 0.02)):
    job = {"parameters": 10, "step_ms": 1.0, "exchange_ms": 0.1, "load_before": 0.5}
    return {"probe": {"load_before": 0.5, "alone": 100.0, "two": [99.0, 98.0], "ceiling": 0.985,
                      "stalled": list(stalled)},
            "models": {"conv_fully": {
                "one": {**job, "samples_per_s": one}, "two": {**job, "samples_per_s": two},
                "pair": [{**job, "samples_per_s": rate} for rate in pair], "lock": {**job, "samples_per_s": lock},
                "efficiency": two / (2 * one), "ceiling": sum(pair) / (2 * one), "lock_step": lock / (2 * one)}}}


def test_scaling_table_gives_efficiency_ceiling_and_lock_step_per_round():
    from benchmarks import scaling

    rounds = [scaling_round(100, 160, (95, 95), 180), scaling_round(100, 170, (100, 100), 190)]
    lines = scaling.table(rounds, ["conv_fully"]).splitlines()
    row = lines[1].split()
    assert row[0] == "conv_fully" and "80/85" in row and "90/95" in row  # efficiency, lock step per round
    assert row[row.index("80/85") - 1] == "82%" and row[row.index("90/95") - 1] == "92%"  # medians
    assert row[row.index("90/95") + 1] == "89%"  # eff./lock: median of 160/180 and 170/190
    assert "time lost in stalls" in lines[-1] and "0.0/1.0/2.0" in lines[-1]


def test_the_lock_step_worker_meets_once_a_step_and_keeps_its_flags():
    from benchmarks import scaling
    from minidl.distributed import Watchdog

    class Comm:
        barriers = 0

        def Barrier(self):
            self.barriers += 1

    group = SimpleNamespace(comm=Comm(), watchdog=Watchdog(0, None))
    assert scaling.lock_step_only(group, [], 0.5, (False, True)) == (False, True)
    assert group.comm.barriers == 1
