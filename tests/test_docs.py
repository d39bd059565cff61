"""The documentation runs as written.

- docs/tour.md: every ```python block, in order, in one fresh namespace, and every
  ```bash block in a shell, all in a temporary working directory;
- README.md: its ```python blocks the same way (its shell blocks install packages);
- the tour's line references, `path:first-last` (`Name`): the lines lie inside Name's
  definition, so the tour is updated when the code moves;
- the docstring examples (>>>) of the main public functions, run with doctest.

A block whose info string carries `no-run` (```python no-run) is skipped: it needs a
GPU, MPI or the data. ```text and unlabelled blocks are never run.
"""
import ast
import doctest
import importlib
import io
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOUR = REPO / "docs" / "tour.md"
README = REPO / "README.md"

#: Which fenced blocks of which file run.
RUN = {TOUR: ("python", "bash"), README: ("python",)}

#: Modules whose docstring examples are doctests.
DOCTEST_MODULES = (
    "minidl.autograd.tensor", "minidl.autograd.gradcheck", "minidl.ops.math", "minidl.ops.activation",
    "minidl.ops.conv", "minidl.nn.core", "minidl.nn.recurrent", "minidl.data.text", "minidl.train.metrics",
)

FENCE = re.compile(r"^(\s*)```(\S*)(.*)$")
REFERENCE = re.compile(
    r"\[`(?P<path>minidl/[\w/]+\.py):(?P<first>\d+)-(?P<last>\d+)`\]\((?P<link>[^)]*)\)\s+\(`(?P<name>[\w.]+)`"
)


@dataclass
class Block:
    line: int  # 1-based line of the block's first line of code
    language: str
    flags: tuple
    source: str


def code_blocks(path):
    """The fenced code blocks of a Markdown file, indented ones (inside a list) included."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, language, flags = opening.group(1), opening.group(2), tuple(opening.group(3).split())
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        body = [line[len(indent):] if line.startswith(indent) else line for line in lines[i + 1:end]]
        blocks.append(Block(i + 2, language, flags, "\n".join(body) + "\n"))
        i = end + 1
    return blocks


def runnable(path):
    return [b for b in code_blocks(path) if b.language in RUN[path] and "no-run" not in b.flags]


def run_python(block, namespace, path):
    # Blank lines in front, so a traceback gives the line number in the Markdown file.
    code = compile("\n" * (block.line - 1) + block.source, str(path), "exec")
    exec(code, namespace)


def run_bash(block, path):
    # `python` in a block is the interpreter running the tests, with the repository importable.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block.source], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, (f"{path.name}, shell block at line {block.line} exited {result.returncode}:\n"
                                    f"{block.source}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")


@pytest.mark.parametrize("path", [TOUR, README], ids=lambda p: p.name)
def test_code_blocks_run_in_order(path, tmp_path, monkeypatch):
    blocks = runnable(path)
    assert blocks, f"{path.name} has no runnable code block"
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    for block in blocks:
        if block.language == "python":
            run_python(block, namespace, path)
        else:
            run_bash(block, path)


def definition_span(path, dotted_name):
    """(first, last) line of the class or function `dotted_name` (Class.method) in path,
    decorators included."""
    nodes = ast.parse((REPO / path).read_text(encoding="utf-8")).body
    node = None
    for part in dotted_name.split("."):
        matches = [n for n in nodes if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == part]
        assert matches, f"docs/tour.md names {dotted_name} in {path}, which defines no {part}"
        node, nodes = matches[0], matches[0].body
    return node.lineno - len(node.decorator_list), node.end_lineno


def test_tour_line_references_point_inside_the_named_definitions():
    text = TOUR.read_text(encoding="utf-8")
    references = list(REFERENCE.finditer(text))
    assert len(references) >= 20, "the tour should cite its ~20 lines at every stop"
    for ref in references:
        path, first, last, name = ref["path"], int(ref["first"]), int(ref["last"]), ref["name"]
        cited = f"{path}:{first}-{last} ({name})"
        assert ref["link"] == f"../{path}#L{first}-L{last}", f"{cited}: the link says {ref['link']}"
        start, end = definition_span(path, name)
        assert start <= first <= last <= end, (
            f"docs/tour.md cites {cited}, but {name} now spans lines {start}-{end}: update the tour")
        assert last - first < 45, f"{cited}: cite a stretch a reader can take in (under 45 lines)"


def test_tour_says_the_lecture_product_is_50_60():
    text = TOUR.read_text(encoding="utf-8")
    assert "[50, 60]" in text and "wrong" in text


def test_markdown_blocks_are_found_with_their_flags(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("x\n```python\na = 1\n```\n- item\n\n  ```bash no-run\n  exit 1\n  ```\n```text\nno\n```\n")
    blocks = code_blocks(page)
    assert [(b.line, b.language, b.flags, b.source) for b in blocks] == [
        (3, "python", (), "a = 1\n"), (8, "bash", ("no-run",), "exit 1\n"), (11, "text", (), "no\n")]


@pytest.mark.parametrize("name", DOCTEST_MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder, output = doctest.DocTestFinder(), io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    tests = [test for test in finder.find(module) if test.examples]
    assert tests, f"{name} has no docstring examples"
    for test in tests:
        runner.run(test, out=output.write)
    assert runner.failures == 0, output.getvalue()

