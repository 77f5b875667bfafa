"""The Palette tab: a block's form, inserted into the text as one line after a chosen node."""

from __future__ import annotations

import streamlit as st

from ui import designer as d
from ui.tabs import state

START = "(before the first node)"


def on_insert() -> None:
    try:
        _insert()
    except Exception as exc:  # a palette bug must not take the page down
        state.session().flash("error", f"Cannot insert: {type(exc).__name__}: {exc}")


def _insert() -> None:
    s = state.session()
    page = st.session_state
    text = page[state.YAML]
    op = page["pal:op"]
    spec = _spec_for_palette(s, text)
    fields = d.palette_fields(op, spec)
    values = {f.name: page.get(f"pal:{op}:{f.name}", f.initial) for f in fields}
    try:
        args = d.collect_args(fields, values)
    except ValueError as exc:
        s.flash("error", f"Cannot insert {op}: {exc}")
        return
    node_id = (page.get(f"pal:{op}:id") or "").strip() or None
    line = d.flow_line(op, args, node_id)
    choice = page.get("pal:after")
    ids = [e.id for e in d.node_entries(text)]
    if choice != START and choice not in ids:
        s.flash("error", f"Cannot insert: there is no node {choice!r} any more; choose where to insert.")
        return
    after = None if choice == START else ids.index(choice)
    try:
        new_text, line_no = d.insert_node(text, after, line)
    except (d.InsertError, d.SpecError) as exc:
        s.flash("error", f"Cannot insert: {exc}")
        return
    result = d.analyse(new_text, None, s.file)
    if not result.ok and not page.get("pal:force"):
        listed = "; ".join(d.problem_title(p, s.file) for p in result.errors[:3])
        s.flash("error", f"Not inserted: `- {line}` would not validate ({listed}). "
                         "Change the values, or tick “insert even if the result does not validate”.")
        return
    page[state.YAML] = new_text
    page.pop(f"pal:{op}:id", None)  # propose a fresh id next time
    s.flash("success", f"Inserted at line {line_no}: `- {line}`")


def _spec_for_palette(s: d.DesignerSession, text: str):
    result = d.analyse(text, None, s.file)
    if result.spec is not None:
        return result.spec
    return s.last_good.result.spec if s.last_good else None


def palette_tab(s: d.DesignerSession) -> None:
    text = st.session_state[state.YAML]
    spec = _spec_for_palette(s, text)
    ops = d.palette_ops(spec)
    user = set(spec.blocks) if spec is not None else set()
    op = st.selectbox("Block", ops, key="pal:op", index=ops.index("conv") if "conv" in ops else 0,
                      format_func=lambda o: f"{o}  (user block)" if o in user else o)
    st.caption(d.block_doc(op, spec))
    entries = d.node_entries(text)
    if not entries:
        st.info("This text has no `nodes:` list of its own (or does not parse), so there is nowhere to insert. "
                "A spec that `extends` another inherits its nodes: add a `nodes:` list to change them.")
        return
    fields = d.palette_fields(op, spec)
    ops = {e.id: e.op for e in entries}
    with st.form("palette_form", border=True):
        # options are node ids with stable labels (no line numbers): the browser sends back the
        # label, which must still name the same option after an edit moved the lines
        st.selectbox("Insert after", [START] + [e.id for e in entries], index=len(entries), key="pal:after",
                     format_func=lambda i: i if i == START else f"{i} ({ops.get(i, '?')})")
        id_key = f"pal:{op}:id"
        if id_key not in st.session_state:
            st.session_state[id_key] = d.unique_id(text, op)
        st.text_input("id", key=id_key, help="Leave empty for a generated id ({op}{n}).")
        cols = st.columns(2)
        for i, f in enumerate(fields):
            with cols[i % 2]:
                field_widget(op, f)
        st.checkbox("insert even if the result does not validate", key="pal:force")
        st.form_submit_button("Insert", on_click=on_insert, type="primary")
    st.caption("The block goes in as one `- {op: ..., ...}` line after the chosen node; only arguments that "
               "differ from the block's defaults are written. The node after it then reads the new node.")


def _show(value) -> str:
    return {None: "null", True: "true", False: "false"}.get(value, str(value)) \
        if value is None or isinstance(value, bool) else str(value)


def field_widget(op: str, f: d.FormField) -> None:
    key = f"pal:{op}:{f.name}"
    label = f.name + (" *" if f.required else "")
    help_text = f.help or None
    if f.kind == "int":
        st.number_input(label, value=int(f.initial), step=1, min_value=f.min_value, key=key, help=help_text)
    elif f.kind == "optint":
        st.number_input(label, value=f.initial, step=1, min_value=f.min_value, key=key, help=help_text,
                        placeholder="null")
    elif f.kind == "float":
        st.number_input(label, value=float(f.initial), format="%g", key=key, help=help_text,
                        step=0.01 if abs(float(f.initial)) < 1 else 0.1)
    elif f.kind == "bool":
        st.checkbox(label, value=bool(f.initial), key=key, help=help_text)
    elif f.kind == "choice":
        st.selectbox(label, f.options, index=f.options.index(f.initial) if f.initial in f.options else 0,
                     key=key, help=help_text, format_func=_show)
    elif f.kind == "str":
        st.text_input(label, value=str(f.initial or ""), key=key, help=help_text)
    else:
        st.text_input(label, value=f.initial, key=key, placeholder="null",
                      help=(help_text or "") + "  (YAML: 3, [3, 5], {kind: group, groups: 8}, $var * 2)")
