"""The blockgraph designer: edit a spec, see its graph and numbers update as you type.

    blockgraph ui [SPEC]                                   # once the CLI has the command
    .venv/bin/python -m streamlit run ui/app.py -- [SPEC]  # the same, by hand

A thin shell over the compiler API: everything but the widgets is in the ui/designer/ package;
this page draws the header (title, totals) and the tabs, each tab one module of ui/tabs/
(sidebar, design, palette, summary, diff, export, train, sweep, study; shared keys in
ui/tabs/state.py).
Session state the app owns:

- st.session_state["yaml"]      the spec text (the editor's widget key: the source of truth)
- st.session_state["designer"]  a ui.designer.DesignerSession: the file, the last valid view,
                                var bookkeeping, one-shot messages, and `.train` / `.sweep` /
                                `.study` (TrainJobs, where background trainers plug in)
- st.session_state["sweep"]     the last ui.sweep.Sweep (its points fill in as values finish)
- st.session_state["study_slot"] the Study tab's ui.study.StudySlot (the opened study file)
- st.session_state["ace:N"]     the code editor's value (ui/editor.py keeps it and "yaml" in step)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from compiler.formatting import human_bytes, human_count  # noqa: E402
from ui import designer as d  # noqa: E402
from ui import editor as ed  # noqa: E402
from ui.tabs import design, diff, export, palette, sidebar, state, study, summary, sweep, train  # noqa: E402



def metrics(view: d.View, base: d.Result | None, stale: bool) -> None:
    """The four totals above the tabs, with the change that the sidebar's var overrides make."""
    a = view.result.analysis
    b = base.analysis if base is not None and base.ok and base is not view.result else None
    cols = st.columns(4)

    def delta(now: int, then: int | None, fmt) -> str | None:
        return None if then is None or now == then else fmt(now - then)

    cols[0].metric("Parameters", f"{a.params:,}", delta(a.params, b.params if b else None, lambda x: f"{x:+,}"),
                   help=f"trainable; plus {a.buffers:,} in buffers" + (" (last valid version)" if stale else ""))
    cols[1].metric("MACs per sample", human_count(a.macs), delta(a.macs, b.macs if b else None, lambda x: f"{x:+,}"),
                   help=f"{a.macs:,} multiply-accumulates")
    cols[2].metric("Weights", human_bytes(a.weight_bytes), help=f"parameters + buffers as {a.dtype}")
    cols[3].metric("Activations", human_bytes(a.activation_bytes),
                   help=f"sum of every node's output at batch {a.batch}, {a.dtype}")


CSS = """
<style>
/* the editor: monospace, no soft wrapping (YAML indentation must stay readable) */
.stTextArea textarea { font-family: "Source Code Pro", "DejaVu Sans Mono", monospace; font-size: 13px;
                       white-space: pre; overflow-wrap: normal; overflow-x: auto; tab-size: 2; }
.block-container { padding-top: 3.6rem; }
[data-testid="stGraphVizChart"] { overflow: auto; max-height: 900px; }
[data-testid="stAppDeployButton"] { display: none; }
</style>
"""


def main() -> None:
    st.set_page_config(page_title="blockgraph designer", page_icon="🧩", layout="wide")
    st.html(CSS)
    # Everything that comes and goes above the tabs lives in this one container, so the tabs keep
    # their place in the page (and the browser keeps the selected tab across reruns).
    header = st.container()
    for problem in d.warm_up():  # once per process: plugins, torch, import-time objects out of the GC's way
        header.error(problem)
    s = state.session()
    values = st.session_state
    values.setdefault(state.EDITOR_PLAIN, ed.plain_by_default())
    if not values[state.EDITOR_PLAIN]:
        values[state.YAML] = values[state.YAML]  # the text area is not drawn: keep its key from Streamlit's clean-up
    ed.pull(values, state.YAML)  # what the user typed into the code editor (also its last edit when going plain)
    settings = sidebar.sidebar(s)
    text = values[state.YAML]
    base = d.analyse(text, None, s.file, settings["batch"], settings["dtype"])
    overrides = sidebar.vars_panel(s, base)
    view = d.refresh(text, overrides, s.file, settings["depth"], settings["batch"], settings["dtype"],
                     settings["rankdir"])
    if view.result.ok:
        s.last_good = view
    shown = view if view.result.ok else s.last_good
    if shown is not None and shown is not view:  # keep the last valid graph, at the current settings
        last = shown.result
        shown = d.refresh(last.text, last.vars, last.file, settings["depth"], settings["batch"], settings["dtype"],
                          settings["rankdir"])
        if not shown.result.ok:
            shown = s.last_good

    with header:
        for level, message in s.take_messages():
            getattr(st, level)(message)
        modified = " · modified" if text != s.saved_text else ""
        title = shown.result.spec.name if shown is not None else Path(s.file).stem
        st.markdown(f"#### {title}  \n<small>{s.display_name}{modified}</small>", unsafe_allow_html=True)
        if shown is not None:
            metrics(shown, base if overrides else None, stale=shown is not view)
        if not view.result.ok:
            n = len(view.result.errors)
            st.error(f"{n} problem{'s' if n != 1 else ''} in the spec (listed next to the editor)"
                     + ("; showing the last valid version." if shown is not None else "."))

    tabs = st.tabs(["Design", "Palette", "Summary", "Diff", "Export", "Train", "Sweep", "Study"])
    with tabs[0]:
        design.design_tab(s, view, shown, settings)
    with tabs[1]:
        palette.palette_tab(s)
    with tabs[2]:
        summary.summary_tab(shown)
    with tabs[3]:
        diff.diff_tab(s, shown)
    with tabs[4]:
        export.export_tab(s, view, overrides)
    with tabs[5]:
        train.train_tab(s, overrides)
    with tabs[6]:
        sweep.sweep_tab(s, overrides)
    with tabs[7]:
        study.study_tab(s)


main()
