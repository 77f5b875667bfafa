"""How the designer words problems, without Streamlit: where each one is (a line of the open
text, another file, the sidebar's var overrides, the Train form) and how to fix it in the
page's own words.

The compiler words its advice for the command line: `set vars.classes to 6 (--var
classes=6)`. A person in the designer has no command line; the same fix there is the
`classes` field under Vars. `in_page_words` is the one place that rewrites such advice, and
every message of the page passes through it (the problem list and the editor's marks via
`problem_title`, a refused Start and a failed run via `error_text`, a sweep's rows), so the
page never tells anyone to pass a flag.

Text the designer loads is named after the open file (or `untitled.yaml` for a buffer that
has none), so a problem reads `specs/default.yaml:10:12: ...`, never `<string>:10:12`.
"""

from __future__ import annotations

import re
from pathlib import Path

from compiler import Problem, SpecError

ROOT = Path(__file__).resolve().parents[1]
UNTITLED = "untitled.yaml"
"""The name of a buffer that was never opened from or saved to a file."""

_VAR = r"([A-Za-z_][A-Za-z0-9_]*)"
_VALUE = r"([^\s,;:()`]+)"
_PAGE_WORDS = [
    # set vars.classes to 6 (--var classes=6)
    (re.compile(rf"set vars\.{_VAR} to {_VALUE} \(--var \1=\2\)"), r"set the `\1` field under Vars to \2"),
    # the override --var classes=10 sets it: set it to 6 or leave it out
    (re.compile(rf"the override --var {_VAR}={_VALUE} sets it: set it to {_VALUE} or leave it out"),
     r"the `\1` field under Vars sets it to \2: set it to \3 there, or reset the vars to the text's values"),
    # any other mention of the flag
    (re.compile(rf"\(--var {_VAR}={_VALUE}\)"), r"(the `\1` field under Vars: \2)"),
    (re.compile(rf"--var {_VAR}={_VALUE}"), r"the `\1` field under Vars set to \2"),
]


def in_page_words(message: str) -> str:
    """`message` with command-line advice (`--var NAME=VALUE`) turned into the page's control
    that does the same (the `NAME` field under Vars)."""
    for pattern, words in _PAGE_WORDS:
        message = pattern.sub(words, message)
    return message


def source_name(file: str | None) -> str:
    """The name text is loaded under: the open file's path, or `untitled.yaml`."""
    return str(file) if file and file != "<string>" else UNTITLED


def in_text(problem: Problem, file: str) -> bool:
    """Whether a problem points into the edited text (not a parent file or the var overrides)."""
    return problem.loc.file in (file, "<string>", UNTITLED)


def short_path(file: str) -> str:
    """A path relative to the repository when it is inside it."""
    try:
        return str(Path(file).resolve().relative_to(ROOT))
    except (ValueError, OSError):
        return file


def problem_title(problem: Problem, file: str) -> str:
    """'line 14, col 22: nodes[3].out: expected ...' (with the file when it is another one)."""
    loc = problem.loc
    where = f"line {loc.line}, col {loc.col}"
    if not in_text(problem, file):
        where = "var overrides" if loc.file == "<vars>" else f"{short_path(loc.file)}: {where}"
    path = f"{problem.path}: " if problem.path else ""
    prefix = "warning: " if problem.severity == "warning" else ""
    return f"{where}: {prefix}{path}{in_page_words(problem.message)}"


FORM_FIELDS = {"dataset": "Dataset", "epochs": "Epochs", "batch_size": "Batch size", "lr": "Learning rate",
               "optimizer": "Optimizer", "device": "Device", "train_size": "Train images", "val_size": "Validation images"}
"""The Train form's label of each setting it passes to compiler.train."""


def problem_line(problem: Problem, file: str) -> str:
    """A problem shown away from the editor, named by its file as the CLI does
    (`specs/default.yaml:10:12: vars.classes: ...`), in the page's words. The var overrides are
    `var overrides`; a setting the Train form passed (located at `<arguments>`) is named by its
    field (`Train form, Batch size: ...`), other settings `settings`."""
    loc = problem.loc
    path = f"{problem.path}: " if problem.path else ""
    prefix = "warning: " if problem.severity == "warning" else ""
    if loc.file == "<vars>":
        where = "var overrides"
    elif loc.file == "<arguments>" and problem.path in FORM_FIELDS:
        where, path = f"Train form, {FORM_FIELDS[problem.path]}", ""
    elif loc.file.startswith("<") and loc.file not in ("<string>",):
        where = "settings"
    else:
        name = UNTITLED if loc.file in ("<string>", UNTITLED) else short_path(loc.file)
        where = f"{name}:{loc.line}:{loc.col}"
    return f"{where}: {prefix}{path}{in_page_words(problem.message)}"


def error_text(exc: BaseException, file: str) -> str:
    """An exception as the page shows it: each located problem on its line, else the
    exception's own message (no traceback), both in the page's words."""
    if isinstance(exc, SpecError):
        return "\n".join(problem_line(p, file) for p in exc.errors)
    return f"{type(exc).__name__}: {in_page_words(str(exc))}"


def quote_lines(text: str, line: int, col: int, context: int = 1) -> str:
    """The lines around `line` with numbers and a caret under `col`."""
    lines = text.splitlines()
    if not lines or line < 1 or line > len(lines):
        return ""
    first, last = max(1, line - context), min(len(lines), line + context)
    width = len(str(last))
    out = []
    for n in range(first, last + 1):
        mark = ">" if n == line else " "
        out.append(f"{mark}{n:>{width}} | {lines[n - 1]}")
        if n == line:
            out.append(f" {'':>{width}} | {' ' * max(0, col - 1)}^")
    return "\n".join(out)


def quote_problem(text: str, problem: Problem, file: str) -> str:
    """The problem's title line, then the offending line of `text` quoted with a marker."""
    title = problem_title(problem, file)
    if not in_text(problem, file):
        return title
    quoted = quote_lines(text, problem.loc.line, problem.loc.col)
    return f"{title}\n{quoted}" if quoted else title
