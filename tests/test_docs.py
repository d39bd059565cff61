"""The documentation runs as written and prints what it says.

- docs/tour.md: every ```python block, in order, in one fresh namespace, and every
  ```bash block in a shell, all in a temporary working directory; what each block
  prints is compared with the ```output block right under it, and a block without one
  must print nothing;
- README.md: its ```python blocks the same way (its shell blocks install packages); an
  ```output block under one is compared too, but a block may print without one;
- the tour's line references, `path:first-last` (`Name`): the lines lie inside Name's
  definition, so the tour is updated when the code moves;
- the docstring examples (>>>) of the main public functions, run with doctest.

A block whose info string carries `no-run` (```python no-run) is skipped: it needs a
GPU, MPI or the data. ```text and unlabelled blocks are never run.

How a block (a new tour stop's, say) declares its output: right under it, with only
blank lines between, a fenced block whose info string is `output`, holding what the
block prints to stdout, as doctest compares it: `...` stands for any text (ELLIPSIS)
and runs of whitespace compare equal (NORMALIZE_WHITESPACE). For example

    ```python
    print(F.relu(minidl.tensor([-1.0, 2.0])))
    ```

    ```output
    tensor([0. 2.], dtype=float32)
    ```

A block that shows an error prints it from an `except` branch (stop 8): should the
call stop raising, the block prints nothing and the comparison fails. Every ```output
block must sit under a block that runs.
"""
import ast
import contextlib
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
#: Whether a block of the file that prints must say what, in an ```output block.
OUTPUT_DECLARED = {TOUR: True, README: False}
#: How printed and stated output are compared.
OUTPUT_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

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
    end: int  # 1-based line of its closing fence


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
        blocks.append(Block(i + 2, language, flags, "\n".join(body) + "\n", end + 1))
        i = end + 1
    return blocks


def is_runnable(block, path):
    return block.language in RUN[path] and "no-run" not in block.flags


def with_stated_output(path):
    """(block, its ```output block or None) for every block of `path` that runs."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = code_blocks(path)
    pairs = []
    for block, below in zip(blocks, blocks[1:] + [None]):
        if not is_runnable(block, path):
            continue
        # only blank lines between this block's closing fence and the output block's opening one
        adjacent = below is not None and not any(line.strip() for line in lines[block.end:below.line - 2])
        pairs.append((block, below if adjacent and below.language == "output" else None))
    return pairs


def assert_prints_as_stated(path, block, printed, stated):
    where = f"{path.name}, {block.language} block at line {block.line}"
    if stated is None:
        assert not OUTPUT_DECLARED[path] or printed == "", (
            f"{where} prints\n{printed}but has no ```output block under it saying so")
        return
    checker = doctest.OutputChecker()
    if not checker.check_output(stated.source, printed, OUTPUT_FLAGS):
        difference = checker.output_difference(doctest.Example("", stated.source), printed, OUTPUT_FLAGS)
        raise AssertionError(f"{where} does not print what the ```output block at line {stated.line} says:\n{difference}")


def run_python(block, namespace, path):
    """Run the block in `namespace`; what it printed."""
    # Blank lines in front, so a traceback gives the line number in the Markdown file.
    code = compile("\n" * (block.line - 1) + block.source, str(path), "exec")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code, namespace)
    return printed.getvalue()


def run_bash(block, path):
    # `python` in a block is the interpreter running the tests, with the repository importable.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block.source], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, (f"{path.name}, shell block at line {block.line} exited {result.returncode}:\n"
                                    f"{block.source}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result.stdout


@pytest.mark.parametrize("path", [TOUR, README], ids=lambda p: p.name)
def test_code_blocks_run_in_order_and_print_what_they_state(path, tmp_path, monkeypatch):
    pairs = with_stated_output(path)
    assert pairs, f"{path.name} has no runnable code block"
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    for block, stated in pairs:
        printed = run_python(block, namespace, path) if block.language == "python" else run_bash(block, path)
        assert_prints_as_stated(path, block, printed, stated)


@pytest.mark.parametrize("path", [TOUR, README], ids=lambda p: p.name)
def test_every_output_block_sits_under_a_block_that_runs(path):
    claimed = {stated.line for _, stated in with_stated_output(path) if stated is not None}
    orphans = [b.line for b in code_blocks(path) if b.language == "output" and b.line not in claimed]
    assert not orphans, f"{path.name}: the ```output blocks at lines {orphans} are under no block that runs"


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
    assert [(b.line, b.language, b.flags, b.source, b.end) for b in blocks] == [
        (3, "python", (), "a = 1\n", 4), (8, "bash", ("no-run",), "exit 1\n", 9), (11, "text", (), "no\n", 12)]


def test_output_blocks_pair_with_the_block_right_above(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text("```python\nprint(1)\n```\n\n```output\n1\n```\n```python\nprint(2)\n```\nprose\n"
                    "```output\n2\n```\n")
    monkeypatch.setitem(RUN, page, ("python",))
    monkeypatch.setitem(OUTPUT_DECLARED, page, False)
    pairs = with_stated_output(page)
    assert [(block.line, stated.line if stated else None) for block, stated in pairs] == [(2, 6), (9, None)]
    block, stated = pairs[0]
    assert_prints_as_stated(page, block, "1\n", stated)
    with pytest.raises(AssertionError, match="does not print what the ```output block at line 6 says"):
        assert_prints_as_stated(page, block, "2\n", stated)
    assert_prints_as_stated(page, pairs[1][0], "2\n", None)  # undeclared output is allowed here ...
    monkeypatch.setitem(OUTPUT_DECLARED, page, True)  # ... and not here
    with pytest.raises(AssertionError, match="has no ```output block under it"):
        assert_prints_as_stated(page, pairs[1][0], "2\n", None)


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

