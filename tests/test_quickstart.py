"""A new user's first hour: the README's quick start runs as written on a machine with
nothing but the package (no ../shared, no MINIDL_DATA_DIR, an empty home), the install
hints in error messages are the README's, and every example and benchmark answers --help
(the benchmarks without PyTorch)."""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
EXAMPLES = sorted((REPO / "examples").glob("*.py"))


def quick_start():
    """The quick start's commands: the lines of its bash block, each split at `&&`."""
    section = README.read_text(encoding="utf-8").split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)[1]
    lines = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [[shlex.split(step) for step in line.split("&&")] for line in lines]


def bare_environment(tmp_path):
    """os.environ without minidl's settings, with an empty home and no shared data."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("MINIDL_")}
    env.update(HOME=str(tmp_path / "home"), MINIDL_SHARED_DATA_DIR=str(tmp_path / "no-shared-data"),
               PYTHONPATH=str(REPO))
    return env


def test_the_quick_start_is_an_install_and_the_main_job_then_the_tests():
    (install, train, predict), (install_dev, tests) = quick_start()
    assert install == ["pip", "install", "-e", "."] and install_dev == ["pip", "install", "-e", ".[dev]"]
    assert train[:2] == ["minidl", "train"] and "--data" not in train and "--output" in train
    assert predict[:2] == ["minidl", "predict"] and predict[predict.index("--model") + 1] == \
        train[train.index("--output") + 1]
    assert tests == ["python", "-m", "pytest", "-q"]
    assert "python -m pytest -q" in (REPO / ".ci" / "run").read_text(encoding="utf-8")  # what CI runs


def test_the_quick_start_runs_as_written_on_a_bare_machine(tmp_path):
    (_, train, predict), _ = quick_start()
    work = tmp_path / "clone"
    work.mkdir()
    env = bare_environment(tmp_path)
    outputs = []
    for step in (train, predict):  # the `minidl` parts, as the entry point runs them
        result = subprocess.run([sys.executable, "-m", "minidl", *step[1:]], cwd=work, env=env,
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0].startswith("data: url-bahnsen-phishing-sample (")  # the sample inside the package
    assert (work / train[train.index("--output") + 1]).is_file()
    scored = [line.split("\t") for line in outputs[1].splitlines()]
    urls = predict[predict.index("--model") + 2:]
    assert [(verdict, url) for _, verdict, url in scored] == [("malicious", urls[0]), ("benign", urls[1])]
    assert float(scored[0][0]) > 0.6 and float(scored[1][0]) < 0.4  # clear of the threshold


def test_install_hints_are_the_readmes():
    readme = " ".join(README.read_text(encoding="utf-8").split())  # a hint may wrap over two lines
    hints = set()
    for path in (REPO / "minidl").rglob("*.py"):
        hints.update(re.findall(r'pip install -e \\?"\.\[\w+\]\\?"', path.read_text(encoding="utf-8")))
    assert hints, "no install hint found"
    for hint in hints:
        assert hint.replace('\\"', '"') in readme, f"{hint}: an error message says it, the README does not"


def test_the_readme_names_the_plot_extra_where_it_promises_a_plot():
    for paragraph in README.read_text(encoding="utf-8").split("\n\n"):
        for promise in re.findall(r"--plots? \S+", paragraph):
            assert "[plot]" in paragraph, f"README: {promise!r} promises a plot without naming the [plot] extra"


def run_with_help(script, block_torch=False):
    """The --help text of a script or module, run in a fresh interpreter."""
    code = ("import runpy, sys\n"
            + ("sys.modules['torch'] = None  # as if PyTorch were not installed\n" if block_torch else "")
            + f"sys.argv = [{script!r}, '--help']\n"
            + (f"runpy.run_module({script!r}, run_name='__main__')" if not script.endswith(".py")
               else f"runpy.run_path({script!r}, run_name='__main__')"))
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    return result


@pytest.mark.parametrize("module", ["benchmarks.compare", "benchmarks.ops"])
def test_the_benchmarks_answer_help_without_pytorch(module):
    result = run_with_help(module, block_torch=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m {module}")


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_every_example_answers_help_and_documents_every_option(example):
    result = run_with_help(str(example))
    assert result.returncode == 0 and result.stdout.startswith("usage:"), result.stderr
    options = result.stdout.split("options:", 1)[1]
    entries = re.split(r"\n  (?=-)", "\n" + options)[1:]
    for entry in entries:
        name, _, description = entry.partition("  ")
        assert description.strip() or "\n" in entry, f"{example.name}: {name.strip()} has no help text"
    assert "lecture" not in result.stdout.lower() and "issue" not in result.stdout.lower()
