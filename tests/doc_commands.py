"""The commands of the documentation, read from its fenced blocks (used by test_doc_commands.py).

A command is a line of a fenced block (no language, `text`, `sh`, `bash`, `console`, `shell`)
that starts with `blockgraph`, `.venv/bin/blockgraph`, `python -m compiler`,
`.venv/bin/python -m compiler`, `torchrun` or `./dev`, optionally after a `$ ` prompt; a line
ending in `\\` continues on the next. In a transcript (a block with `$ ` prompts) the lines
after a command, up to the next prompt, are its documented output, and `$ echo $?` followed
by a number (or `CMD; echo $?`) documents the exit status. Synopses (`[--var NAME=VALUE]...`,
`[SPEC]`) are not commands.

What a command is expected to do:
- the documented exit status when there is one;
- else non-zero when its documented output holds an error (`error:`, or a located
  `FILE:LINE:COL:` line that is not a warning), else 0;
- every documented output line that can be compared (located lines, `X: ok: ...` lines of
  `validate`, `error:` lines) appears in what it prints, up to a `...` or its first 60
  characters (memory sizes and timings further on depend on the machine).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

LANGUAGES = {"", "text", "sh", "bash", "console", "shell"}
PREFIXES = ("blockgraph", ".venv/bin/blockgraph", "python -m compiler", ".venv/bin/python -m compiler",
            "torchrun", "./dev")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([A-Za-z0-9_+-]*)")
SYNOPSIS = re.compile(r"\[-|\]\.\.\.|\[[A-Z]+\]|\[[a-z-]+ [A-Z]")
LOCATED = re.compile(r"^[^:\s][^:]*:\d+:\d+: ")
STATUS_ECHO = re.compile(r";\s*echo \$\?\s*$")
COMPARED_CHARS = 60


@dataclass
class Command:
    file: str
    line: int
    text: str
    """As documented: prompt and trailing comment removed, continuation lines joined."""
    outputs: list[str] = field(default_factory=list)
    status: int | None = None
    """The exit status the page states (`echo $?`), if it does."""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def expected_status(self) -> str:
        """'0', 'non-zero' or the documented number."""
        if self.status is not None:
            return str(self.status)
        return "non-zero" if any(_is_error(line) for line in self.outputs) else "0"

    def compared_lines(self) -> list[str]:
        """The documented output lines the run must print (their stable beginnings)."""
        wanted = []
        for line in self.outputs:
            line = line.rstrip()
            if not (LOCATED.match(line) or ": ok: " in line or "error:" in line):
                continue
            stable = line.split("...")[0].rstrip()
            wanted.append(stable[:COMPARED_CHARS])
        return [w for w in wanted if w]


def _is_error(line: str) -> bool:
    if "error:" in line:
        return True
    return bool(LOCATED.match(line)) and " warning: " not in line


def _strip_comment(text: str) -> str:
    """`cmd   # why` -> `cmd` (a `#` after whitespace, outside quotes, starts a shell comment)."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i].rstrip()
    return text.rstrip()


def _blocks(path: Path):
    """(first line number, lines) of each fenced block in a language that holds commands."""
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).lower()
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        if lang in LANGUAGES:
            yield i + 2, lines[i + 1:j]
        i = j + 1


def _joined(lines: list[str], start: int):
    """(line number, text) with `\\` continuations joined."""
    k = 0
    while k < len(lines):
        number, text = start + k, lines[k]
        while text.rstrip().endswith("\\") and k + 1 < len(lines):
            k += 1
            text = text.rstrip()[:-1].rstrip() + " " + lines[k].strip()
        yield number, text
        k += 1


def _is_command(text: str) -> bool:
    return any(text == p or text.startswith(p + " ") for p in PREFIXES) and not SYNOPSIS.search(text)


def commands(path: Path, root: Path) -> list[Command]:
    """Every command of one page, in page order."""
    name = str(path.relative_to(root))
    found: list[Command] = []
    for start, lines in _blocks(path):
        transcript = any(l.lstrip().startswith("$ ") for l in lines)
        current: Command | None = None
        echo = False
        for number, raw in _joined(lines, start):
            stripped = raw.strip()
            if transcript and stripped.startswith("$ "):
                text = _strip_comment(stripped[2:].strip())
                current, echo = None, False
                if text == "echo $?":
                    echo = True
                    current = found[-1] if found and found[-1].file == name else None
                    continue
                inline_echo = bool(STATUS_ECHO.search(text))
                text = STATUS_ECHO.sub("", text)
                if _is_command(text):
                    current = Command(name, number, text)
                    found.append(current)
                    echo = inline_echo
                continue
            if transcript:
                if current is None:
                    continue
                if echo and stripped.isdigit():
                    current.status = int(stripped)
                elif not echo or stripped:
                    current.outputs.append(stripped)
                continue
            text = _strip_comment(stripped)
            if _is_command(text):
                found.append(Command(name, number, text))
    return found
