"""The floors of docs/architecture.md hold: import-linter's layers contract in
pyproject.toml passes (an import that climbs a floor, at module level or inside a
function, fails it), and the modules stay short enough to read in one sitting."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="needs import-linter: pip install -e \".[dev]\"")
def test_every_import_points_down():
    result = subprocess.run(["lint-imports"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("folder, most", [("minidl", 650), ("minidl/cli", 300)])
def test_modules_are_short_enough_to_read(folder, most):
    long = {str(path.relative_to(REPO)): count for path in (REPO / folder).rglob("*.py")
            if (count := len(path.read_text().splitlines())) > most}
    assert not long, f"modules over {most} lines: {long}"


def test_layers_do_not_train():
    import minidl

    assert not hasattr(minidl.nn.Dense(1), "fit") and not hasattr(minidl.nn.Module(), "compile")
    assert all(hasattr(minidl.Sequential([]), name) for name in ("compile", "fit", "evaluate", "predict", "summary"))
    assert sys.modules["minidl.train.model"].Model is minidl.Model
