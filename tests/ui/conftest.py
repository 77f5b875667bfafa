"""The designer's tests: ui/ is not an installed package, so put the repository root on sys.path
(tests/ui has no __init__.py on purpose: a package named `ui` here would shadow the app's)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

APP = ROOT / "ui" / "app.py"


@pytest.fixture(autouse=True)
def plain_editor(monkeypatch):
    """The plain text area as the editor (AppTest cannot reach into the Ace component's iframe);
    tests/ui/test_editor.py switches to the code editor itself."""
    monkeypatch.setenv("BLOCKGRAPH_EDITOR", "plain")


@pytest.fixture
def app(monkeypatch):
    """A fresh AppTest of ui/app.py, run once (it opens specs/default.yaml: the test runner's own
    arguments are hidden from the app, which reads a spec path from sys.argv)."""
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    monkeypatch.setattr(sys, "argv", [str(APP)])
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at
