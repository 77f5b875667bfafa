"""The sidebar: Open (zoo, template, upload), Save, the view settings and the vars panel."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui import designer as d
from ui.designer import ROOT
from ui.tabs import state
from ui.templates import FILE_NAMES, TEMPLATES


def _open(file: str, text: str, source: str, note: str) -> None:
    s = state.session()
    s.reopen(file, text, source)
    st.session_state[state.YAML] = text
    st.session_state["save_path"] = s.display_name
    state.forget_widgets("var:")
    state.forget_widgets("pal:")
    s.flash("success", note)


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
        state.session().flash("error", f"{upload.name} is not UTF-8 text.")
        return
    _open(str(d.SPECS / Path(upload.name).name), text, "upload", f"Opened the upload {upload.name} (not saved yet).")


def on_save() -> None:
    s = state.session()
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
    text = st.session_state[state.YAML]
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
    state.forget_widgets("var:")
    state.session().var_widgets.clear()


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
        st.download_button("Download YAML", data=st.session_state[state.YAML], file_name=Path(s.file).name,
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
