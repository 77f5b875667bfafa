"""The Diff tab: this spec against a zoo spec, the saved text or pasted YAML (compiler.diff)."""

from __future__ import annotations

import streamlit as st

from ui import designer as d
from ui.tabs import state


def diff_tab(s: d.DesignerSession, shown: d.View | None) -> None:
    if shown is None:
        st.info("The spec must be valid to compare it.")
        return
    mode = st.radio("Compare with", ["a zoo spec", "the saved text", "pasted YAML"], horizontal=True,
                    key="diff_mode", help="“the saved text” shows what your edits since opening or saving changed.")
    if mode == "a zoo spec":
        zoo = d.zoo()
        default = zoo.index(d.diff_default(s.file, st.session_state[state.YAML]))
        name = st.selectbox("Other spec", zoo, index=default, key="diff_zoo")
        other = d.zoo_result(name)
        other_file = str(d.SPECS / name)
    elif mode == "the saved text":
        other_file = s.file
        other = d.analyse(s.saved_text, None, s.file)
        if s.saved_text == st.session_state[state.YAML]:
            st.caption("No edits since the text was opened or saved.")
    else:
        pasted = st.text_area("YAML to compare with", key="diff_text", height=200,
                              placeholder="blockgraph: 1\nname: other\n...")
        if not pasted.strip():
            st.caption("Paste a spec to compare this one with.")
            return
        other_file = str(d.SPECS / "pasted.yaml")
        other = d.analyse(pasted, None, other_file)
    c1, c2, c3 = st.columns(3)
    every = c1.checkbox("every node", key="diff_all", help="Compare node by node instead of blocks as units.")
    depth = c2.number_input("Depth", min_value=0, max_value=64, value=1, step=1, key="diff_depth",
                            disabled=every, help="Blocks deeper than this are compared as units.")
    reverse = c3.checkbox("reverse (other → this)", key="diff_reverse")
    if not other.ok:
        st.error("The other spec has problems:")
        for p in other.errors[:state.MAX_SHOWN_PROBLEMS]:
            st.code(d.problem_title(p, other_file), language=None)
        return
    if mode == "the saved text":  # read it as saved -> now
        reverse = not reverse
    a, b = (other, shown.result) if reverse else (shown.result, other)
    result = d.diff_of(a, b, None if every else int(depth))
    count = {k: sum(c.kind == k for c in result.changes) for k in ("added", "removed", "changed")}
    st.markdown(f"**{result.a} → {result.b}**: {count['added']} added, {count['removed']} removed, "
                f"{count['changed']} changed")
    if result.changes:
        marks = {"added": "+", "removed": "−", "changed": "~"}
        st.dataframe([{"": marks[c.kind], "id": c.id, "op": c.op, "params Δ": c.params, "MACs Δ": c.macs,
                       "what": "; ".join(c.what)} for c in result.changes],
                     hide_index=True, width="stretch", column_config={
                         "params Δ": st.column_config.NumberColumn(format="localized"),
                         "MACs Δ": st.column_config.NumberColumn(format="localized")})
    (pa, pb), (ma, mb) = result.params, result.macs

    def pct(x: int, y: int) -> str:
        return f" ({(y - x) / x:+.2%})" if x else ""

    st.markdown(f"**parameters:** {pa:,} → {pb:,} ({pb - pa:+,}){pct(pa, pb)}  \n"
                f"**MACs:** {ma:,} → {mb:,} ({mb - ma:+,}){pct(ma, mb)}")
    with st.expander("As text (blockgraph diff)"):
        from compiler.diff import format_diff

        st.code(format_diff(result), language=None)
