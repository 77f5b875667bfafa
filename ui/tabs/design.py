"""The Design tab: the editor on the left; problems and the (last valid) graph on the right."""

from __future__ import annotations

import streamlit as st

from ui import designer as d
from ui import editor as ed
from ui.tabs import state

LARGE_GRAPH = 250


def problems(text: str, result: d.Result, file: str) -> None:
    errors = result.errors
    for p in errors[:state.MAX_SHOWN_PROBLEMS]:
        st.error(d.problem_title(p, file), icon=":material/error:")
        quoted = d.quote_lines(text, p.loc.line, p.loc.col) if d.in_text(p, file) else ""
        if quoted:
            st.code(quoted, language=None)
    if len(errors) > state.MAX_SHOWN_PROBLEMS:
        st.caption(f"… and {len(errors) - state.MAX_SHOWN_PROBLEMS} more problems.")
    for w in result.warnings[:state.MAX_SHOWN_PROBLEMS]:
        st.warning(d.problem_title(w, file), icon=":material/warning:")


def design_tab(s: d.DesignerSession, view: d.View, shown: d.View | None, settings: dict) -> None:
    left, right = st.columns([7, 5], gap="medium")
    with left:
        result = view.result
        plain = st.toggle("Plain text editor", key=state.EDITOR_PLAIN, disabled=not ed.available(),
                          help="The code editor (Ace: YAML highlighting, problems marked at their lines) or a plain "
                               "text area. Both edit the same text." + ("" if ed.available() else
                                                                        " streamlit-ace is not installed."))
        if plain:
            st.text_area("Spec (YAML)", key=state.YAML, height=520,
                         help="Validated on every change (Ctrl+Enter or click outside to apply).")
        else:
            from streamlit_ace import st_ace

            text = st.session_state[state.YAML]
            found = result.errors + result.warnings
            st_ace(value=text, key=ed.push(st.session_state, state.YAML), language="yaml", theme="chrome", height=520,
                   font_size=13, tab_size=2, show_gutter=True, show_print_margin=False, wrap=False, auto_update=True,
                   annotations=ed.annotations(found, text, s.file), markers=ed.markers(found, text, s.file))
            st.caption("Validated as you type. A problem marks its line in red; hover over the gutter icon for "
                       "the message.")
        if result.ok:
            n = len(result.spec.nodes)
            outs = ", ".join(f"{o} {list(result.analysis.graph.shapes[o])}" for o in result.analysis.graph.outputs)
            st.success(f"Valid: {n} nodes; outputs {outs} (checked in {result.seconds * 1e3:.0f} ms).",
                       icon=":material/check_circle:")
    with right:  # problems next to the text, above the (last valid) graph
        problems(st.session_state[state.YAML], result, s.file)
        if shown is None:
            st.info("No graph yet: fix the problems on the left.")
            return
        if shown is not view:
            st.info("The text has problems: the graph and numbers are those of the last valid version.")
        units = len(shown.rows)
        st.graphviz_chart(shown.dot, width="content")
        name = shown.result.spec.name
        dot = shown.dot
        c1, c2 = st.columns(2)
        c1.download_button("Download SVG", data=lambda: d.svg_of(dot), file_name=f"{name}.svg",
                           mime="image/svg+xml", key="download_svg", on_click="ignore")
        c2.download_button("Download DOT", data=dot, file_name=f"{name}.dot", mime="text/vnd.graphviz",
                           key="download_dot", on_click="ignore")
        maxd = shown.result.max_depth
        st.caption(f"{units} boxes at depth {shown.depth} (depth {maxd} opens everything). Double borders are "
                   "blocks: raise the depth in the sidebar to open them."
                   + (" This is a large graph: lower the depth to keep it readable." if units > LARGE_GRAPH else ""))
