"""The blockgraph designer: edit a spec, see its graph and numbers update as you type.

    blockgraph ui [SPEC]                                   # once the CLI has the command
    .venv/bin/python -m streamlit run ui/app.py -- [SPEC]  # the same, by hand

A thin shell over the compiler API; everything but the widgets is in ui/designer.py.
Session state the app owns:

- st.session_state["yaml"]      the spec text (the editor's widget key: the source of truth)
- st.session_state["designer"]  a ui.designer.DesignerSession: the file, the last valid view,
                                var bookkeeping, one-shot messages, and `.train` / `.sweep`
                                (TrainJobs, where background trainers plug in)
- st.session_state["sweep"]     the last ui.sweep.Sweep (its points fill in as values finish)
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
from ui.templates import FILE_NAMES, TEMPLATES  # noqa: E402

YAML = "yaml"
EDITOR_PLAIN = "editor_plain"
SESSION = "designer"
MAX_SHOWN_PROBLEMS = 12
START = "(before the first node)"
LARGE_GRAPH = 250


# ------------------------------------------------------------------------------ state


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


def _forget_widgets(prefix: str) -> None:
    for key in [k for k in st.session_state if isinstance(k, str) and k.startswith(prefix)]:
        del st.session_state[key]


def _open(file: str, text: str, source: str, note: str) -> None:
    s = session()
    s.reopen(file, text, source)
    st.session_state[YAML] = text
    st.session_state["save_path"] = s.display_name
    _forget_widgets("var:")
    _forget_widgets("pal:")
    s.flash("success", note)


# ------------------------------------------------------------------------------ callbacks


def on_open_zoo() -> None:
    name = st.session_state["zoo_pick"]
    path = d.SPECS / name
    _open(str(path), path.read_text(), "zoo", f"Opened specs/{name}.")


def on_open_template() -> None:
    label = st.session_state["template_pick"]
    _open(str(d.SPECS / FILE_NAMES[label]), TEMPLATES[label], "template",
          f"New spec from the template “{label}” (not saved yet).")


def on_upload() -> None:
    upload = st.session_state.get("upload")
    if upload is None:
        return
    try:
        text = upload.getvalue().decode("utf-8")
    except UnicodeDecodeError:
        session().flash("error", f"{upload.name} is not UTF-8 text.")
        return
    _open(str(d.SPECS / Path(upload.name).name), text, "upload", f"Opened the upload {upload.name} (not saved yet).")


def on_save() -> None:
    s = session()
    raw = st.session_state.get("save_path", "").strip()
    if not raw:
        s.flash("error", "Give a file name to save to.")
        return
    target = Path(raw).expanduser()
    target = (target if target.is_absolute() else ROOT / target).resolve()
    if d.outside_workspace(target, d.save_roots(ROOT)):
        s.flash("error", f"{raw} is outside the repository, the working folder and the temporary folder: "
                         "save inside one of them.")
        return
    own = str(target) == s.file and s.source in ("file", "zoo")
    if target.exists() and not own and not st.session_state.get("save_overwrite"):
        s.flash("error", f"{raw} exists: tick “overwrite” to replace it.")
        return
    text = st.session_state[YAML]
    try:
        d.save_text(str(target), text)
    except (OSError, ValueError) as exc:
        s.flash("error", f"Cannot save to {raw}: {exc}")
        return
    s.file, s.saved_text, s.source = str(target), text, "file"
    st.session_state["save_path"] = s.display_name
    problems = len(d.analyse(text, None, s.file).errors)
    s.flash("warning" if problems else "success",
            f"Saved {s.display_name}" + (f" (with {problems} problem(s))." if problems else "."))


def on_reset_vars() -> None:
    _forget_widgets("var:")
    session().var_widgets.clear()


def on_insert() -> None:
    try:
        _insert()
    except Exception as exc:  # a palette bug must not take the page down
        session().flash("error", f"Cannot insert: {type(exc).__name__}: {exc}")


def _insert() -> None:
    s = session()
    state = st.session_state
    text = state[YAML]
    op = state["pal:op"]
    spec = _spec_for_palette(s, text)
    fields = d.palette_fields(op, spec)
    values = {f.name: state.get(f"pal:{op}:{f.name}", f.initial) for f in fields}
    try:
        args = d.collect_args(fields, values)
    except ValueError as exc:
        s.flash("error", f"Cannot insert {op}: {exc}")
        return
    node_id = (state.get(f"pal:{op}:id") or "").strip() or None
    line = d.flow_line(op, args, node_id)
    choice = state.get("pal:after")
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
    if not result.ok and not state.get("pal:force"):
        listed = "; ".join(d.problem_title(p, s.file) for p in result.errors[:3])
        s.flash("error", f"Not inserted: `- {line}` would not validate ({listed}). "
                         "Change the values, or tick “insert even if the result does not validate”.")
        return
    state[YAML] = new_text
    state.pop(f"pal:{op}:id", None)  # propose a fresh id next time
    s.flash("success", f"Inserted at line {line_no}: `- {line}`")


def _spec_for_palette(s: d.DesignerSession, text: str):
    result = d.analyse(text, None, s.file)
    if result.spec is not None:
        return result.spec
    return s.last_good.result.spec if s.last_good else None


# ------------------------------------------------------------------------------ sidebar


def sidebar(s: d.DesignerSession) -> dict:
    """File menu, view settings and the vars panel. Returns the settings."""
    sb = st.sidebar
    sb.header("blockgraph designer")
    with sb.expander("Open", expanded=False):
        zoo = d.zoo()
        st.selectbox("Zoo spec", zoo, key="zoo_pick")
        st.button("Open zoo spec", key="open_zoo", on_click=on_open_zoo, width="stretch")
        st.selectbox("Template", list(TEMPLATES), key="template_pick")
        st.button("New from template", key="open_template", on_click=on_open_template, width="stretch")
        st.file_uploader("Upload a spec", type=["yaml", "yml"], key="upload", on_change=on_upload)
        st.caption("Opening replaces the editor's text; save or download it first.")
    with sb.expander("Save", expanded=False):
        st.text_input("Save as (relative to the repository)", key="save_path")
        st.checkbox("overwrite an existing file", key="save_overwrite")
        st.button("Save", key="save", on_click=on_save, width="stretch")
        st.download_button("Download YAML", data=st.session_state[YAML], file_name=Path(s.file).name,
                           mime="application/x-yaml", key="download_yaml_side", on_click="ignore",
                           width="stretch")
    sb.subheader("View")
    depth = sb.number_input("Depth (0: blocks collapsed)", min_value=0, max_value=64, value=0, step=1, key="depth",
                            help="How many levels of repeats, composite and user blocks to open in the graph "
                                 "and the summary.")
    c1, c2 = sb.columns(2)
    batch = c1.number_input("Batch", min_value=1, max_value=1 << 20, value=1, step=1, key="batch",
                            help="Batch size for the activation memory.")
    dtype = c2.selectbox("dtype", d.DTYPES, key="dtype")
    rankdir = sb.radio("Layout", ["TB", "LR"], horizontal=True, key="rankdir",
                       format_func=lambda r: {"TB": "top to bottom", "LR": "left to right"}[r])
    return {"depth": int(depth), "batch": int(batch), "dtype": dtype, "rankdir": rankdir}


def vars_panel(s: d.DesignerSession, base: d.Result) -> dict:
    """One input per var of the spec; returns the overrides (vars whose value differs from
    the text's). The text itself is never touched."""
    sb = st.sidebar
    sb.subheader("Vars")
    if base.spec is not None:
        s.base_vars = dict(base.spec.vars)
        s.bound_vars = dict(base.spec.dataset_vars)
    base_vars, bound = s.base_vars, s.bound_vars
    if not base_vars:
        sb.caption("This spec has no vars." if base.ok else "Fix the text to change vars.")
        return {}
    if not base.ok:
        sb.caption("The text has problems: these are the vars of the last valid version.")
    current = {}
    for name, value in base_vars.items():
        key = f"var:{name}"
        kind = d.var_kind(value)
        stamp = (type(value).__name__, repr(value))
        if s.var_widgets.get(name) != stamp or key not in st.session_state:
            st.session_state[key] = value if kind != "text" else ("null" if value is None else str(value))
            s.var_widgets[name] = stamp
        if kind == "bool":
            current[name] = sb.checkbox(name, key=key)
        elif kind == "int":
            current[name] = int(sb.number_input(name, step=1, key=key, help=(
                f"Bound to the dataset: training sets it to the dataset's {bound[name]} (this value, the "
                "spec's default, is for the graph and summary); changing it here fixes it."
                if name in bound else None)))
        elif kind == "float":
            current[name] = float(sb.number_input(name, step=0.01 if abs(value) < 1 else 0.1, format="%g", key=key))
        else:
            current[name] = d.parse_var(sb.text_input(name, key=key, help="Read as YAML: 16 is a number, "
                                                                          "null is none, anything else text."))
    changed = d.overrides(base_vars, current)
    if changed:
        sb.caption("Overridden: " + ", ".join(f"{k}={v!r}" for k, v in changed.items()))
        sb.button("Reset vars to the text's values", key="reset_vars", on_click=on_reset_vars)
    return changed


# ------------------------------------------------------------------------------ main area


def metrics(view: d.View, base: d.Result | None, stale: bool) -> None:
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


def problems(text: str, result: d.Result, file: str) -> None:
    errors = result.errors
    for p in errors[:MAX_SHOWN_PROBLEMS]:
        st.error(d.problem_title(p, file), icon=":material/error:")
        quoted = d.quote_lines(text, p.loc.line, p.loc.col) if d.in_text(p, file) else ""
        if quoted:
            st.code(quoted, language=None)
    if len(errors) > MAX_SHOWN_PROBLEMS:
        st.caption(f"… and {len(errors) - MAX_SHOWN_PROBLEMS} more problems.")
    for w in result.warnings[:MAX_SHOWN_PROBLEMS]:
        st.warning(d.problem_title(w, file), icon=":material/warning:")


def design_tab(s: d.DesignerSession, view: d.View, shown: d.View | None, settings: dict) -> None:
    left, right = st.columns([7, 5], gap="medium")
    with left:
        result = view.result
        plain = st.toggle("Plain text editor", key=EDITOR_PLAIN, disabled=not ed.available(),
                          help="The code editor (Ace: YAML highlighting, problems marked at their lines) or a plain "
                               "text area. Both edit the same text." + ("" if ed.available() else
                                                                        " streamlit-ace is not installed."))
        if plain:
            st.text_area("Spec (YAML)", key=YAML, height=520,
                         help="Validated on every change (Ctrl+Enter or click outside to apply).")
        else:
            from streamlit_ace import st_ace

            text = st.session_state[YAML]
            found = result.errors + result.warnings
            st_ace(value=text, key=ed.push(st.session_state, YAML), language="yaml", theme="chrome", height=520,
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
        problems(st.session_state[YAML], result, s.file)
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


def palette_tab(s: d.DesignerSession) -> None:
    text = st.session_state[YAML]
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


def diff_tab(s: d.DesignerSession, shown: d.View | None) -> None:
    if shown is None:
        st.info("The spec must be valid to compare it.")
        return
    mode = st.radio("Compare with", ["a zoo spec", "the saved text", "pasted YAML"], horizontal=True,
                    key="diff_mode", help="“the saved text” shows what your edits since opening or saving changed.")
    if mode == "a zoo spec":
        zoo = d.zoo()
        default = zoo.index(d.diff_default(s.file, st.session_state[YAML]))
        name = st.selectbox("Other spec", zoo, index=default, key="diff_zoo")
        other = d.zoo_result(name)
        other_file = str(d.SPECS / name)
    elif mode == "the saved text":
        other_file = s.file
        other = d.analyse(s.saved_text, None, s.file)
        if s.saved_text == st.session_state[YAML]:
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
        for p in other.errors[:MAX_SHOWN_PROBLEMS]:
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


def export_tab(s: d.DesignerSession, view: d.View, overrides: dict) -> None:
    text = st.session_state[YAML]
    st.download_button("Download YAML", data=text, file_name=Path(s.file).name, mime="application/x-yaml",
                       key="download_yaml", on_click="ignore")
    result = view.result
    if result.ok:
        name = result.spec.name
        file = s.file
        st.download_button("Download PyTorch code (forward)", data=lambda: d.code_file(text, overrides, file, name),
                           file_name=f"{name}_forward.py", mime="text/x-python", key="download_code",
                           on_click="ignore")
        if st.toggle("Show the generated forward()", key="show_code"):
            try:
                st.code(d.generated_code(text, overrides, file), language="python")
            except d.SpecError as exc:  # problems found only when building (init policies)
                for p in exc.errors:
                    st.error(d.problem_title(p, file))
        if overrides:
            st.caption("The code is built with the var overrides of the sidebar; the YAML download is the text "
                       "as written.")
    else:
        st.caption("The PyTorch code needs a valid spec.")
    if view.dot is not None:
        dot = view.dot
        st.download_button("Download the graph (SVG)", data=lambda: d.svg_of(dot), file_name=f"{result.spec.name}.svg",
                           mime="image/svg+xml", key="download_svg_export", on_click="ignore")
    job = s.train
    weights = job.weights_path
    if weights is not None and Path(weights).is_file():
        path = Path(weights)
        st.download_button(f"Download trained weights ({path.name})", data=lambda: path.read_bytes(),
                           file_name=path.name, mime="application/octet-stream", key="download_weights",
                           on_click="ignore")
    else:
        st.caption("Trained weights: none yet (a training run in the Train tab will offer them here).")
    onnx_section(s, result, overrides)


def onnx_section(s: d.DesignerSession, result: d.Result, overrides: dict) -> None:
    """Build an ONNX file of the spec (optionally with the trained weights) and offer it."""
    st.markdown("##### ONNX")
    missing = d.onnx_missing()
    if missing:
        st.info(f"ONNX export needs {', '.join(missing)}, which cannot be imported here: install the `export` "
                "extra (`pip install 'blockgraph[export]'`; `./dev` installs it).")
        return
    if not result.ok:
        st.caption("ONNX export needs a valid spec.")
        return
    text, file, name = st.session_state[YAML], s.file, result.spec.name
    weights = s.train.weights_path
    trained = weights is not None and Path(weights).is_file()
    use = st.checkbox("with the trained weights", key="onnx_weights", disabled=not trained,
                      help=f"{weights}" if trained else "No trained weights yet: a Train tab run offers them.")
    source = str(weights) if trained and use else None
    wanted = (text, d.freeze_vars(overrides), file, source)
    if st.button("Build ONNX", key="onnx_build",
                 help="compiler.export(spec, 'onnx', ...): torch's dynamo exporter, dynamic batch; the file is "
                      "reloaded in onnxruntime and its outputs compared with the model's before it is offered."):
        with st.spinner("Exporting to ONNX and checking it in onnxruntime…"):
            try:
                data = d.onnx_bytes(text, overrides or None, file, source)
            except d.SpecError as exc:
                st.session_state.pop("onnx_export", None)
                for p in exc.errors:
                    st.error(d.problem_title(p, file))
            except Exception as exc:  # noqa: BLE001 - ExportError, weight mismatch...: shown, not raised
                st.session_state.pop("onnx_export", None)
                st.error(f"ONNX export failed: {type(exc).__name__}: {exc}")
            else:
                st.session_state["onnx_export"] = {"key": wanted, "data": data, "name": name}
    built = st.session_state.get("onnx_export")
    if built is not None and built["key"] == wanted:
        st.download_button(f"Download ONNX ({human_bytes(len(built['data']))})", data=built["data"],
                           file_name=f"{built['name']}.onnx", mime="application/octet-stream", key="download_onnx",
                           on_click="ignore")
        st.caption("Checked in onnxruntime at batch 1 and 3 against the PyTorch module; inputs and outputs are named "
                   "after the spec's, dimension 0 is the batch." + (" With the trained weights." if source else
                                                                    " With the spec's own initialisation."))
    elif built is not None:
        st.caption("The text, vars or weights changed since the last ONNX build: build it again.")


def train_tab(s: d.DesignerSession, overrides: dict | None = None) -> None:
    """Train the editor's text (with the sidebar's var overrides) in this session's TrainJob."""
    from ui import train_panel as tp

    job = s.train
    runs: list = st.session_state.setdefault("train_runs", [])
    text = st.session_state[YAML]
    defaults = tp.form_defaults(text)
    names, devs = tp.datasets(), tp.devices()
    if st.session_state.get("train_defaults") != defaults or "train_batch" not in st.session_state:
        # set through session state (not only the widgets' `value`), so a browser that still holds
        # the previous spec's values gets the new ones too
        st.session_state.update(
            train_dataset=defaults["dataset"] if defaults["dataset"] in names else names[0],
            train_epochs=int(defaults["epochs"]), train_batch=int(defaults["batch_size"]),
            train_lr=float(defaults["lr"]), train_optimizer=defaults["optimizer"], train_device=defaults["device"],
            train_size=int(defaults["train_size"]), train_val=int(defaults["val_size"]))
        st.session_state["train_defaults"] = defaults
    with st.form("train_form"):
        c1, c2, c3, c4 = st.columns(4)
        dataset = c1.selectbox("Dataset", names, key="train_dataset")
        epochs = c2.number_input("Epochs", 1, 10_000, key="train_epochs")
        batch = c3.number_input("Batch size", 1, 65_536, key="train_batch")
        lr = c4.number_input("Learning rate", 1e-6, 10.0, format="%.4g", key="train_lr")
        c5, c6, c7, c8 = st.columns(4)
        optimizer = c5.selectbox("Optimizer", tp.OPTIMIZERS, key="train_optimizer")
        device = c6.selectbox("Device", devs, key="train_device")
        train_size = c7.number_input("Train images", 1, 10_000_000, key="train_size")
        val_size = c8.number_input("Validation images", 1, 10_000_000, key="train_val")
        pressed = st.form_submit_button("Start", disabled=job.running or s.sweep.running, type="primary")
    if pressed:
        problem = tp.check_trainable(text, overrides or {}, s.file)
        if problem:
            st.error(problem)
        else:
            settings = dict(dataset=dataset, epochs=int(epochs), batch_size=int(batch), lr=float(lr),
                            optimizer=optimizer, device=device, train_size=int(train_size), val_size=int(val_size))
            name = (tp.yaml.safe_load(text) or {}).get("name", Path(s.file).stem)
            tp.start(job, runs, text, overrides or {}, settings, str(name), tp.runs_root(str(id(s))), s.file)
    current = runs[-1] if runs else None
    if current is None:
        st.caption("No run yet in this session.")
        return

    polling = job.running

    @st.fragment(run_every=1.0 if polling else None)
    def live():
        job.beat()  # the heartbeat: a closed tab stops beating, and its run stops (TrainJob.should_stop)
        tp.sync(job, current)
        if polling and not job.running:
            st.rerun()  # the run ended: redraw the whole tab (history, Resume, Export's weights), stop polling
        st.write(f"**{current.label}** ({current.spec_name}): **{current.state}**")
        p = current.progress
        if p.get("epochs") and p.get("steps"):
            done = ((p.get("epoch", 1) - 1) * p["steps"] + p.get("step", 0)) / (p["epochs"] * p["steps"])
            st.progress(min(max(done, 0.0), 1.0),
                        text=f"epoch {p.get('epoch', 0)}/{p['epochs']}, step {p.get('step', 0)}/{p['steps']}"
                             + (f", loss {p['loss']:.4f}" if "loss" in p else ""))
        if current.message:
            st.error(current.message)
        if current.rows:  # the task's own columns and curves, named as it names them (pixel acc, mIoU...)
            st.dataframe(current.table(), hide_index=True, width="stretch", key=None)
            for metric, keys in tp.curves(current.rows, current.task).items():
                st.line_chart({f"{split} {metric}": [r.get(key) for r in current.rows] for split, key in keys.items()})
        if job.running:
            st.button("Stop", key="train_stop", on_click=job.cancel)
        elif current.state == "stopped":
            st.button("Resume", key="train_resume", on_click=lambda: tp.resume(job, current))

    live()
    train_history(runs)
    if not job.running and current.weights.is_file():
        train_evaluation(current)


def train_history(runs: list) -> None:
    """Curves of several runs overlaid: train (dashed) vs val, best epoch marked, log scale."""
    import altair as alt

    from ui import train_panel as tp

    st.markdown("##### Run history")
    st.dataframe([tp.summary(r) for r in runs], hide_index=True, width="stretch", key="train_runs_table")
    labels = [r.label for r in runs]
    chosen = st.multiselect("Runs to compare", labels, default=labels[-3:], key="train_compare")
    log = st.toggle("Log-scale loss", key="train_log")
    rows = tp.history_rows(runs, chosen)
    if not rows:
        return
    metrics = list(dict.fromkeys(r["metric"] for r in rows))  # loss, then each run's measures by name
    best = tp.best_points(runs, chosen)
    for col, metric in zip(st.columns(len(metrics)), metrics):
        data = [r for r in rows if r["metric"] == metric]
        scale = alt.Scale(type="log") if log and metric == "loss" else alt.Scale(zero=False)
        lines = alt.Chart(alt.Data(values=data)).mark_line(point=True).encode(
            x="epoch:Q", y=alt.Y("value:Q", title=metric, scale=scale), color="run:N",
            strokeDash=alt.StrokeDash("split:N", sort=["val", "train"]))
        chart, marks = lines, [b for b in best if b["metric"] == metric]
        if marks:
            chart = lines + alt.Chart(alt.Data(values=marks)).mark_point(shape="diamond", size=160, filled=True).encode(
                x="epoch:Q", y="value:Q", color="run:N", tooltip=["run:N", "epoch:Q", "value:Q"])
        col.altair_chart(chart, width="stretch")


def train_evaluation(run) -> None:
    """Confusion matrix and sample predictions of a finished or stopped run (256 val images);
    predicted masks or boxes drawn over validation images for segmentation and detection runs."""
    import altair as alt

    from ui import train_panel as tp

    task = run.progress.get("task", "classification")
    if task != "classification":
        if st.toggle("Predictions on validation images", key="train_eval"):
            train_predictions(run, task)
        return
    if not st.toggle("Confusion matrix and sample predictions", key="train_eval"):
        return
    try:
        result = tp.evaluate(run)
    except Exception as exc:  # noqa: BLE001 - e.g. a detection/segmentation run: shown, not raised
        st.warning(f"Evaluation not available for this run: {exc}")
        return
    names = result["classes"]
    cells = [{"true": names[i], "predicted": names[j], "count": c}
             for i, row in enumerate(result["matrix"]) for j, c in enumerate(row)]
    st.caption(f"{run.label}: accuracy {100 * result['accuracy']:.1f}% on {sum(c['count'] for c in cells)} "
               "validation images")
    base = alt.Chart(alt.Data(values=cells)).encode(x=alt.X("predicted:N", sort=names), y=alt.Y("true:N", sort=names))
    st.altair_chart(base.mark_rect().encode(color="count:Q") + base.mark_text().encode(text="count:Q"))
    samples = result["samples"]
    cols = st.columns(8)
    for i, sample in enumerate(samples):
        ok = "✓" if sample["true"] == sample["pred"] else "✗"
        cols[i % 8].image(sample["image"], caption=f"{ok} {sample['pred']} (true {sample['true']})", width="stretch")


def sweep_tab(s: d.DesignerSession, overrides: dict | None = None) -> None:
    """Train the spec briefly at a few values of one var; accuracy against parameters and MACs."""
    from ui import sweep as sw
    from ui import train_panel as tp

    job = s.sweep
    state = st.session_state
    text = state[YAML]
    names = sw.sweepable(s.base_vars)
    st.caption("Pick a var and a few values: each value is measured (parameters, MACs) and trained briefly with "
               "the same seed and settings, one after the other, in a background thread. The other settings "
               "(dataset, learning rate, optimizer, device) come from the spec's `train:` section.")
    if not names:
        st.info("This spec has no numeric vars to sweep: add one under `vars:` (e.g. `width: 32`) and use it "
                "as `$width`.")
    else:
        if state.get("sweep_var") not in names:
            state["sweep_var"] = sw.default_var(names)
        var = st.selectbox("Var", names, key="sweep_var", format_func=lambda n: f"{n} (now {s.base_vars.get(n)!r})")
        stamp = (var, repr(s.base_vars[var]))
        if state.get("sweep_stamp") != stamp or "sweep_values" not in state:  # another var, or its value changed
            state["sweep_values"] = sw.suggest_values(s.base_vars[var])
            state["sweep_stamp"] = stamp
        defaults = tp.form_defaults(text)
        if state.get("sweep_defaults") != defaults or "sweep_batch" not in state:  # another train: section
            state.update(sweep_epochs=min(int(defaults["epochs"]), 2),
                         sweep_train=min(int(defaults["train_size"]), 1024),
                         sweep_val=min(int(defaults["val_size"]), 256), sweep_batch=int(defaults["batch_size"]))
            state["sweep_defaults"] = defaults
        with st.form("sweep_form"):
            values_text = st.text_input("Values", key="sweep_values",
                                        help=f"Numbers separated by commas or spaces (at most {sw.MAX_VALUES}).")
            c1, c2, c3, c4 = st.columns(4)
            epochs = c1.number_input("Epochs per value", 1, 10_000, key="sweep_epochs")
            train_size = c2.number_input("Train images", 1, 10_000_000, key="sweep_train")
            val_size = c3.number_input("Validation images", 1, 10_000_000, key="sweep_val")
            batch = c4.number_input("Batch size", 1, 65_536, key="sweep_batch")
            busy = job.running or s.train.running
            pressed = st.form_submit_button("Start sweep", disabled=busy, type="primary",
                                            help="One training at a time per session: wait for the Train tab's "
                                                 "run to end." if s.train.running else None)
        if pressed:
            try:
                values = sw.parse_values(values_text)
            except sw.SweepError as exc:
                st.error(f"Cannot sweep {var}: {exc}")
            else:
                count = state.get("sweep_count", 0) + 1
                state["sweep_count"] = count
                settings = sw.settings_for(text, dict(epochs=int(epochs), train_size=int(train_size),
                                                      val_size=int(val_size), batch_size=int(batch)))
                sweep = sw.Sweep(var, values, settings, text, {k: v for k, v in (overrides or {}).items() if k != var},
                                 s.file, label=f"sweep {count}")
                state["sweep"] = sweep
                sw.start(job, sweep, tp.runs_root(str(id(s))) / f"sweep{count}")
    sweep = state.get("sweep")
    if sweep is None:
        st.caption("No sweep yet in this session.")
        return
    polling = job.running

    @st.fragment(run_every=1.0 if polling else None)
    def live():
        job.beat()  # a closed tab stops beating, and the sweep stops (TrainJob.should_stop)
        if polling and not job.running:
            st.rerun()  # the sweep ended: redraw once more, stop polling
        status = ("stopping" if job.stop_requested else "running") if job.running else (
            "stopped" if any(p.state == "stopped" for p in sweep.points) else "done")
        st.write(f"**{sweep.label}**: `{sweep.var}` over {', '.join(map(str, sweep.values))}, "
                 f"{sweep.settings['epochs']} epoch(s), {sweep.settings['train_size']} train / "
                 f"{sweep.settings['val_size']} val images: **{status}**")
        fraction, label = sw.progress(sweep, job.events())
        st.progress(fraction, text=label)
        if job.error is not None:
            st.error(f"The sweep stopped on an unexpected error: {type(job.error).__name__}: {job.error}")
        st.dataframe(sw.table_rows(sweep), hide_index=True, width="stretch", column_config={
            "params": st.column_config.NumberColumn("params", format="localized"),
            "MACs": st.column_config.NumberColumn("MACs", format="localized"),
            "error": st.column_config.TextColumn("error", width="large")})
        for p in sweep.points:
            if p.state == "failed":
                st.error(f"{sweep.var}={p.value}: {p.error}")
        if job.running:
            st.button("Stop sweep", key="sweep_stop", on_click=job.cancel)
        sweep_chart(sweep)

    live()


def sweep_chart(sweep) -> None:
    """Accuracy against parameters and against MACs, one point per trained value."""
    import altair as alt

    from ui import sweep as sw

    rows = sw.plot_rows(sweep)
    if not rows:
        return
    metric = sw.column(sweep).replace(" %", " (%)").replace("val acc ", "val accuracy ")
    cols = st.columns(2)
    for col, axis in zip(cols, ("parameters", "MACs")):
        data = sorted((r for r in rows if r["axis"] == axis), key=lambda r: r["cost"])
        base = alt.Chart(alt.Data(values=data)).encode(
            x=alt.X("cost:Q", title=f"{axis} (per sample)" if axis == "MACs" else axis, scale=alt.Scale(zero=False)),
            y=alt.Y("accuracy:Q", title=metric, scale=alt.Scale(zero=False)),
            tooltip=["value:N", "cost:Q", "accuracy:Q"])
        chart = (base.mark_line(point=True, color="#4c78a8")
                 + base.mark_text(dy=-10).encode(text=alt.Text("value:N")))
        col.altair_chart(chart.properties(title=f"{metric} vs {axis} ({sweep.var} labelled)"), width="stretch")


def train_predictions(run, task: str, n: int = 8) -> None:
    """What a segmentation or detection run's model predicts on its first validation images
    (compiler.train.tasks.validation_predictions), truth and prediction drawn side by side."""
    from ui import drawing

    try:
        from compiler.train.tasks import validation_predictions

        predictions = validation_predictions(run.run_dir, n)
        samples = drawing.samples(predictions)
    except Exception as exc:  # noqa: BLE001 - shown, not raised
        st.warning(f"Predictions not available for this run: {type(exc).__name__}: {exc}")
        return
    kind = drawing.kind_of(predictions)
    chips = " ".join(f"<span style='background:{c};padding:0 6px;border-radius:3px'>&nbsp;</span> {name}"
                     for name, c in drawing.legend(predictions.classes, background=kind == "segmentation"))
    what = "masks" if kind == "segmentation" else "boxes"
    st.caption(f"{run.label} ({task}): true {what} (left) and predicted {what} (right) on the first {len(samples)} "
               "validation images.")
    st.markdown(chips, unsafe_allow_html=True)
    for row in range(0, len(samples), 4):  # four pairs a row: truth, prediction, truth, prediction...
        cols = st.columns(8)
        for i, sample in enumerate(samples[row:row + 4]):
            cols[2 * i].image(sample["truth"], caption="true", width="stretch")
            cols[2 * i + 1].image(sample["prediction"], caption=f"predicted: {sample['caption']}", width="stretch")


# ------------------------------------------------------------------------------ page


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
    s = session()
    state = st.session_state
    state.setdefault(EDITOR_PLAIN, ed.plain_by_default())
    if not state[EDITOR_PLAIN]:
        state[YAML] = state[YAML]  # the text area is not drawn: keep its key from Streamlit's widget clean-up
    ed.pull(state, YAML)  # what the user typed into the code editor (also its last edit when switching to plain)
    settings = sidebar(s)
    text = st.session_state[YAML]
    base = d.analyse(text, None, s.file, settings["batch"], settings["dtype"])
    overrides = vars_panel(s, base)
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

    tabs = st.tabs(["Design", "Palette", "Summary", "Diff", "Export", "Train", "Sweep"])
    with tabs[0]:
        design_tab(s, view, shown, settings)
    with tabs[1]:
        palette_tab(s)
    with tabs[2]:
        summary_tab(shown)
    with tabs[3]:
        diff_tab(s, shown)
    with tabs[4]:
        export_tab(s, view, overrides)
    with tabs[5]:
        train_tab(s, overrides)
    with tabs[6]:
        sweep_tab(s, overrides)

main()
