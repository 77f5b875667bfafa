"""The Design tab's code editor, without Streamlit calls: problems as Ace annotations and
markers, and the bookkeeping that keeps the editor and st.session_state["yaml"] in step.

The editor is streamlit-ace's `st_ace` (Ace in a component iframe, YAML mode). Its value is
the component's own widget state, under a key of the form ``ace:N``; the text the app works
on stays in st.session_state["yaml"], which every tab, callback and AppTest test reads and
writes. Two rules keep them in step (`pull` before the page reads the text, `push` when
the editor is drawn):

- the component's value differs from the text it was last given: the user typed, so the
  text becomes the component's value;
- the text differs from what the component was last given (a zoo spec was opened, the
  palette inserted a node, the plain editor changed it): the component is created afresh
  under the next key ``ace:N+1`` with the new text (an Ace component reads its initial value
  only when it is created, so a new key is the only way to replace its text).

The plain text area (st.text_area with key "yaml") is the fallback: a toggle in the Design
tab, the default when streamlit-ace cannot be imported or $BLOCKGRAPH_EDITOR is "plain"
(the AppTest tests use it: AppTest cannot reach into component iframes).

What the component cannot do (streamlit-ace 0.1.1): it cannot style the marks with the
app's CSS (the iframe only knows Ace's own classes, so errors use `ace_error-marker`, a
translucent red line, and warnings `ace_highlight-marker`, a yellow one), cannot show a
message inline under the line (the message is the gutter icon's tooltip, and the list next
to the editor), and cannot move the cursor to a problem.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Any

from compiler import Problem

KEY_PREFIX = "ace:"
GENERATION = "ace_generation"
GIVEN = "ace_given"
"""The text the current editor component was created with or last sent back."""


def available() -> bool:
    """Whether streamlit-ace can be imported."""
    try:
        import streamlit_ace  # noqa: F401
    except ImportError:
        return False
    return True


def plain_by_default() -> bool:
    """The plain text area unless Ace is available and $BLOCKGRAPH_EDITOR is not "plain"."""
    return os.environ.get("BLOCKGRAPH_EDITOR", "ace").strip().lower() == "plain" or not available()


def _row(problem: Problem, lines: int) -> int:
    return min(max(problem.loc.line, 1), max(lines, 1)) - 1


def annotations(problems: list[Problem], text: str, file: str) -> list[dict[str, Any]]:
    """Ace gutter annotations, one per problem: ``{"row", "column", "type", "text"}`` with
    0-based row and column (Ace's), type "error" or "warning", and the message as the designer
    lists it. A problem in another file (an `extends:` parent) or in the var overrides has no
    line of this text: it is put on the first line, its text naming where it is."""
    from ui.designer import in_text, problem_title

    lines = len(text.splitlines())
    out = []
    for p in problems:
        inside = in_text(p, file)
        out.append({"row": _row(p, lines) if inside else 0, "column": max(p.loc.col, 1) - 1 if inside else 0,
                    "type": "warning" if p.severity == "warning" else "error", "text": problem_title(p, file)})
    return out


def markers(problems: list[Problem], text: str, file: str) -> list[dict[str, Any]]:
    """Ace markers: the whole line of each problem in this text highlighted (errors red,
    warnings yellow), one marker per line (an error wins over a warning on the same line)."""
    from ui.designer import in_text

    lines = text.splitlines()
    rows: dict[int, str] = {}
    for p in problems:
        if not in_text(p, file):
            continue
        row = _row(p, len(lines))
        kind = "warning" if p.severity == "warning" else "error"
        if rows.get(row) != "error":
            rows[row] = kind
    return [{"startRow": row, "startCol": 0, "endRow": row, "endCol": max(len(lines[row]) if row < len(lines) else 0, 1),
             "className": "ace_error-marker" if kind == "error" else "ace_highlight-marker", "type": "fullLine"}
            for row, kind in sorted(rows.items())]


def key(state: MutableMapping) -> str:
    """The current editor component's widget key."""
    return f"{KEY_PREFIX}{state.get(GENERATION, 0)}"


def pull(state: MutableMapping, yaml_key: str = "yaml") -> bool:
    """Before the page reads the text: when the editor sent a value other than the text it
    was given (the user typed), make it the text. Returns whether the text changed."""
    value = state.get(key(state))
    if isinstance(value, str) and value != state.get(GIVEN):
        state[GIVEN] = value
        if value != state.get(yaml_key):
            state[yaml_key] = value
            return True
    return False


def push(state: MutableMapping, yaml_key: str = "yaml") -> str:
    """When the editor is drawn: if the text changed elsewhere since the editor was given it,
    move to a fresh component key (so Ace starts from the new text). Returns the key to draw
    the editor with; the caller passes state[yaml_key] as its value."""
    text = state.get(yaml_key, "")
    if state.get(GIVEN) != text:
        if GIVEN in state:
            state[GENERATION] = state.get(GENERATION, 0) + 1
        state[GIVEN] = text
    return key(state)
