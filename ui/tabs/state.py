"""What every part of the page shares: the session-state keys and this browser session's
DesignerSession (created on the first run from the spec named on the command line)."""

from __future__ import annotations

import sys
from typing import Callable

import streamlit as st

from ui import designer as d

YAML = "yaml"
"""The spec text (the editor's widget key: the source of truth)."""
EDITOR_PLAIN = "editor_plain"
SESSION = "designer"
MAX_SHOWN_PROBLEMS = 12


def session() -> d.DesignerSession:
    """This browser session's DesignerSession, created on the first run from the spec named
    on the command line (after `--`), else specs/default.yaml."""
    s = st.session_state.get(SESSION)
    if s is None:
        s, text = d.DesignerSession.open_path(d.spec_from_argv(sys.argv[1:]), "file")
        st.session_state[SESSION] = s
        st.session_state[YAML] = text
        st.session_state["save_path"] = s.display_name
    elif YAML not in st.session_state:
        st.session_state[YAML] = s.saved_text
    return s


def forget_widgets(prefix: str) -> None:
    """Drop the widget values whose keys start with `prefix` (their widgets start afresh)."""
    for key in [k for k in st.session_state if isinstance(k, str) and k.startswith(prefix)]:
        del st.session_state[key]


def live(job: d.TrainJob, draw: Callable[[], None]) -> None:
    """Draw `draw()` in a fragment that redraws itself every second while `job` runs (the
    Train and Sweep tabs' progress). Each redraw beats the job's heartbeat: a closed browser tab
    stops beating, and its run stops (TrainJob.should_stop). When the run ends, the whole page
    reruns once (history, Resume, Export's weights) and the polling stops."""
    polling = job.running

    @st.fragment(run_every=1.0 if polling else None)
    def fragment():
        job.beat()
        if polling and not job.running:
            st.rerun()
        draw()

    fragment()
