"""Located errors: every problem blockgraph reports points at a place in the YAML text.

A `Loc` is a file, a 1-based line and column, and the YAML path of the value (``nodes[3].out``).
`SpecError` carries a list of `Problem`s so one run reports every independent mistake, and the
CLI can print each as ``FILE:LINE:COL: message`` while the UI underlines the same places.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Loc:
    """Where a value sits in the source text (1-based line and column)."""

    file: str = "<string>"
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Problem:
    """One located message. `path` is the YAML path (``nodes[2].k``) or '' for the document."""

    loc: Loc
    message: str
    path: str = ""
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        where = f"{self.path}: " if self.path else ""
        return f"{self.loc}: {prefix}{where}{self.message}"


class SpecError(Exception):
    """A spec could not be loaded, checked or built. `errors` lists every located problem."""

    def __init__(self, errors: list[Problem] | Problem):
        self.errors: list[Problem] = [errors] if isinstance(errors, Problem) else list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))

    @property
    def first(self) -> Problem:
        return self.errors[0]


class ShapeError(ValueError):
    """Raised by a block's shape rule when its inputs cannot work; the graph check locates it."""


@dataclass
class Collector:
    """Gathers problems across a stage, so one pass reports all independent mistakes."""

    problems: list[Problem] = field(default_factory=list)

    def error(self, loc: Loc, message: str, path: str = "") -> None:
        problem = Problem(loc, message, path)
        if problem not in self.problems:  # a block used five times reports its mistake once
            self.problems.append(problem)

    def warn(self, loc: Loc, message: str, path: str = "") -> None:
        self.problems.append(Problem(loc, message, path, "warning"))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise SpecError(self.errors)


def format_path(path: tuple) -> str:
    """('nodes', 3, 'out') -> 'nodes[3].out'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
