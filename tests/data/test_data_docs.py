"""docs/datasets.md stays true: its Python examples run, and a ```text block right after one
shows what it prints (whitespace aside; `...` stands for left-out text). The examples run in
order, in one namespace, in a temporary folder with `specs/`, an image folder `my_images/` and
tiny torchvision datasets under $BLOCKGRAPH_DATA. docs/examples/shapes_grid.py runs too.
"""

from __future__ import annotations

import contextlib
import io
import re
import runpy
from pathlib import Path

import pytest

from data_fakes import make_folder

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "datasets.md"


def _blocks() -> list[tuple[str, int, str]]:
    """(language, line, text) of every top-level fenced block."""
    blocks, current, language, start = [], None, "", 0
    for number, line in enumerate(DOC.read_text().splitlines(keepends=True), start=1):
        fence = re.match(r"^```(\S*)\s*$", line)
        if current is None:
            if fence:
                current, language, start = [], fence.group(1), number
        elif fence and not fence.group(1):
            blocks.append((language, start, "".join(current)))
            current = None
        else:
            current.append(line)
    return blocks


def _flat(text: str) -> str:
    return " ".join(text.split())


def _shows(output: str, expected: str) -> bool:
    position = 0
    for part in (p.strip() for p in _flat(expected).split("...")):
        found = _flat(output).find(part, position)
        if found < 0:
            return False
        position = found + len(part)
    return True


def test_examples_run_and_print_what_they_show(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("BLOCKGRAPH_DATA", str(tiny_data))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").symlink_to(ROOT / "specs")
    make_folder(tmp_path / "my_images", per_class=5)
    blocks = _blocks()
    namespace: dict = {}
    ran = 0
    for i, (language, line, text) in enumerate(blocks):
        if language != "python":
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(text, f"{DOC}:{line}", "exec"), namespace)
        ran += 1
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        if following and following[0] == "text" and _gap_is_blank(line, text, following[1]):
            assert _shows(out.getvalue(), following[2]), (
                f"{DOC.name}:{line}: the example printed\n{out.getvalue()}\nnot what the doc shows:\n{following[2]}")
    assert ran >= 6


def _gap_is_blank(line: int, text: str, next_line: int) -> bool:
    """Whether only blank lines separate a block ending after `text` from the next one."""
    lines = DOC.read_text().splitlines()
    end = line + text.count("\n") + 1  # 1-based line of the closing fence
    return all(not l.strip() for l in lines[end:next_line - 1])


def test_shapes_grid_script(tmp_path):
    out = tmp_path / "grid.png"
    module = runpy.run_path(str(ROOT / "docs" / "examples" / "shapes_grid.py"))
    module["grid"]().save(out)
    assert out.stat().st_size > 1000
    committed = ROOT / "docs" / "shapes_grid.png"
    assert committed.exists() and committed.stat().st_size < 200 * 1024


def test_doc_lists_every_dataset_and_option():
    from compiler.data import dataset_names

    text = DOC.read_text()
    for name in dataset_names():
        assert f"`{name}`" in text, name
    for option in ("size", "channels", "train_size", "val_size", "objects", "task", "cache", "precompute",
                   "progress", "transform", "val_fraction", "mean", "std", "root", "download", "seed"):
        assert f"`{option}`" in text, option


@pytest.mark.parametrize("language", ["python", "yaml", "text"])
def test_blocks_are_found(language):
    assert any(b[0] == language for b in _blocks())
