"""The Design tab's code editor (streamlit-ace): problems as annotations and markers, the
sync between the component's value and st.session_state["yaml"], and the toggle."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("streamlit")

import compiler  # noqa: E402
from compiler import Problem  # noqa: E402
from compiler.errors import Loc  # noqa: E402
from ui import editor as ed  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "ui" / "app.py"
DEFAULT = (ROOT / "specs" / "default.yaml").read_text()


def with_classes(text: str, n: int) -> str:
    """`text` with its class count set to `n`, whether written `classes: 10` or bound to the
    dataset (`classes: {dataset: classes, default: 10}`)."""
    return re.sub(r"(classes: (?:\{dataset: classes, default: )?)-?\d+", rf"\g<1>{n}", text, count=1)

TEXT = """\
blockgraph: 1
name: broken
inputs:
  image: [3, 8, 8]
nodes:
  - {op: conv, out: -1, k: 3}
  - {op: gap}
"""


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(compiler.SpecError) as info:
        compiler.analyze(compiler.load(text))
    return info.value.errors


def test_a_spec_error_becomes_an_annotation_and_a_red_line_at_its_place():
    problems = problems_of(TEXT)
    assert len(problems) == 1 and problems[0].loc.line == 6
    col = TEXT.splitlines()[5].index("-1") + 1  # 1-based column of the bad value
    assert problems[0].loc.col == col
    (note,) = ed.annotations(problems, TEXT, "<string>")
    assert note["row"] == 5 and note["column"] == col - 1 and note["type"] == "error"  # Ace counts from 0
    assert note["text"].startswith(f"line 6, col {col}: nodes[0].out:")
    (mark,) = ed.markers(problems, TEXT, "<string>")
    assert mark == {"startRow": 5, "startCol": 0, "endRow": 5, "endCol": len("  - {op: conv, out: -1, k: 3}"),
                    "className": "ace_error-marker", "type": "fullLine"}


def test_warnings_other_files_and_lines_past_the_end():
    text = "a: 1\nb: 2\n"
    problems = [Problem(Loc("spec.yaml", 2, 4), "unused", severity="warning"),
                Problem(Loc("spec.yaml", 2, 1), "bad"),
                Problem(Loc("/elsewhere/parent.yaml", 9, 3), "in the parent"),
                Problem(Loc("spec.yaml", 40, 1), "past the end")]
    notes = ed.annotations(problems, text, "spec.yaml")
    assert [(n["row"], n["column"], n["type"]) for n in notes] == [(1, 3, "warning"), (1, 0, "error"), (0, 0, "error"),
                                                                   (1, 0, "error")]
    assert "parent.yaml" in notes[2]["text"] and notes[2]["text"].endswith("in the parent")
    marks = ed.markers(problems, text, "spec.yaml")
    # one mark per line of this text; the error wins over the warning on line 2; none for the parent
    assert [(m["startRow"], m["className"]) for m in marks] == [(1, "ace_error-marker")]
    warn = ed.markers(problems[:1], text, "spec.yaml")
    assert [(m["startRow"], m["className"]) for m in warn] == [(1, "ace_highlight-marker")]


def test_pull_and_push_keep_the_editor_and_the_text_in_step():
    state = {"yaml": "one"}
    first = ed.push(state)  # the editor is created with the text
    assert first == "ace:0" and state[ed.GIVEN] == "one"
    assert not ed.pull(state) and state["yaml"] == "one"  # no value from the browser yet
    state[first] = "one"  # the component reports its initial value: not an edit
    assert not ed.pull(state)
    state[first] = "two"  # the user typed
    assert ed.pull(state) and state["yaml"] == "two"
    assert ed.push(state) == first  # same component: Ace keeps its cursor
    state["yaml"] = "three"  # opened from the zoo / inserted by the palette
    assert not ed.pull(state) and state["yaml"] == "three"  # the editor's stale value does not win
    second = ed.push(state)
    assert second == "ace:1" and state[ed.GIVEN] == "three"
    state[second] = "four"
    assert ed.pull(state) and state["yaml"] == "four"
    state[second] = "three"  # typed back to what it was given: still an edit
    assert ed.pull(state) and state["yaml"] == "three"


def test_plain_editor_by_default_only_when_asked_or_without_ace(monkeypatch):
    monkeypatch.setenv("BLOCKGRAPH_EDITOR", "plain")
    assert ed.plain_by_default()
    monkeypatch.setenv("BLOCKGRAPH_EDITOR", "ace")
    assert ed.plain_by_default() is (not ed.available())
    monkeypatch.setitem(sys.modules, "streamlit_ace", None)  # import fails
    assert not ed.available() and ed.plain_by_default()


def test_toggling_the_editor_keeps_the_text_and_an_ace_edit_reaches_the_page(app):
    pytest.importorskip("streamlit_ace")
    edited = with_classes(DEFAULT, 7)
    app.text_area(key="yaml").input(edited)
    app.run()
    app.toggle(key="editor_plain").set_value(False)  # to the code editor
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.get("text_area") and app.session_state["yaml"] == edited
    app.run()  # a rerun without the text area must not lose its key
    assert app.session_state["yaml"] == edited
    # typing in Ace = the component's value changes (AppTest sets it through session state)
    key = ed.key(app.session_state)
    broken = with_classes(edited, -3)
    app.session_state[key] = broken
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.session_state["yaml"] == broken
    assert any("problem" in e.value for e in app.error)  # validated as the text area's edits are
    app.toggle(key="editor_plain").set_value(True)  # back to the text area: same text
    app.run()
    assert app.text_area(key="yaml").value == broken and app.session_state["yaml"] == broken


def test_the_code_editor_is_the_default_when_ace_is_installed(monkeypatch):
    pytest.importorskip("streamlit_ace")
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("BLOCKGRAPH_EDITOR", "ace")
    monkeypatch.setattr(sys, "argv", [str(APP)])
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.toggle(key="editor_plain").value is False and not at.get("text_area")
    assert at.session_state["yaml"] == DEFAULT
    # opening another spec replaces the editor's text: a fresh component key
    before = ed.key(at.session_state)
    at.selectbox(key="zoo_pick").set_value("vgg11.yaml")
    at.button(key="open_zoo").click()
    at.run()
    assert "name: vgg11" in at.session_state["yaml"] and ed.key(at.session_state) != before


def test_an_ace_edit_sent_with_the_switch_to_plain_is_kept(app):
    pytest.importorskip("streamlit_ace")
    app.toggle(key="editor_plain").set_value(False)
    app.run()
    typed = with_classes(DEFAULT, 5)
    app.session_state[ed.key(app.session_state)] = typed  # the editor's last value arrives with the click
    app.toggle(key="editor_plain").set_value(True)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.text_area(key="yaml").value == typed
