"""The Summary tab: one row per unit at the chosen depth, then the totals."""

from __future__ import annotations

import streamlit as st

from compiler.formatting import human_bytes, human_count
from ui import designer as d


def summary_tab(shown: d.View | None) -> None:
    if shown is None:
        st.info("No summary yet: the spec has never been valid in this session.")
        return
    a = shown.result.analysis
    st.dataframe(shown.rows, hide_index=True, width="stretch", column_config={
        "params": st.column_config.NumberColumn("params", format="localized"),
        "MACs": st.column_config.NumberColumn("MACs", format="localized"),
        "nodes": st.column_config.NumberColumn("nodes", help="how many nodes the row stands for"),
        "RF": st.column_config.NumberColumn("RF", help="receptive field (pixels along one axis)"),
        "jump": st.column_config.NumberColumn("jump", help="effective stride"),
        "memory": st.column_config.TextColumn("memory", help=f"output at batch {a.batch}, {a.dtype}"),
    })
    st.markdown(
        f"**parameters:** {a.params:,} trainable, {a.buffers:,} in buffers  \n"
        f"**MACs:** {a.macs:,} ({human_count(a.macs)}) per sample  \n"
        f"**weights:** {human_bytes(a.weight_bytes)}; **activations:** {human_bytes(a.activation_bytes)} "
        f"at batch {a.batch}, {a.dtype}")
    st.caption(f"Rows at depth {shown.depth}: repeats, composite and user blocks deeper than that are one row "
               "with their totals (change the depth in the sidebar).")
