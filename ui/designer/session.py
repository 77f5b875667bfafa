"""What the designer keeps for one browser session (st.session_state["designer"]): the file,
the last valid view, var bookkeeping, one-shot messages and the three training slots (Train, Sweep, Study)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ui.designer.caching import View
from ui.designer.files import ROOT
from ui.designer.jobs import TrainJob


@dataclass
class DesignerSession:
    """Everything the designer keeps for one browser session (st.session_state["designer"]).
    The text itself lives in st.session_state["yaml"] (the editor widget's key)."""

    file: str
    """Path the text came from or will be saved to (problems and `extends:` resolve against it)."""
    saved_text: str
    """The text as last opened or saved (to tell whether there are unsaved edits)."""
    source: str = ""
    """How it was opened: 'file', 'zoo', 'template', 'upload'."""
    last_good: View | None = None
    """The last view without errors: shown while the text is invalid."""
    base_vars: dict[str, Any] = field(default_factory=dict)
    """The vars as the text (last valid) defines them."""
    bound_vars: dict[str, str] = field(default_factory=dict)
    """Vars bound to the training dataset (name -> fact), from the last valid text."""
    var_widgets: dict[str, tuple] = field(default_factory=dict)
    """Var name -> the (type, value) its widget was last reset to."""
    messages: list[tuple[str, str]] = field(default_factory=list)
    """(level, text) shown once at the next run: success, info, warning, error."""
    train: TrainJob = field(default_factory=TrainJob)
    """The training slot (see TrainJob)."""
    sweep: TrainJob = field(default_factory=TrainJob)
    """The Sweep tab's slot: one thread training the values of a sweep in turn (ui/sweep.py)."""
    study: TrainJob = field(default_factory=TrainJob)
    """The Study tab's slot: one thread running a study's trials in turn (ui/study.py)."""

    @classmethod
    def open_path(cls, path: Path, source: str = "file") -> tuple["DesignerSession", str]:
        text = Path(path).read_text()
        return cls(str(Path(path).resolve()), text, source), text

    def reopen(self, file: str, text: str, source: str) -> None:
        """Point the session at another text: forget var state and the last good view."""
        self.file, self.saved_text, self.source = file, text, source
        self.last_good = None
        self.base_vars, self.bound_vars = {}, {}
        self.var_widgets = {}

    def flash(self, level: str, text: str) -> None:
        self.messages.append((level, text))

    def take_messages(self) -> list[tuple[str, str]]:
        out, self.messages = self.messages, []
        return out

    @property
    def display_name(self) -> str:
        path = Path(self.file)
        try:
            return str(path.relative_to(ROOT))
        except ValueError:
            return str(path)
