"""The Export tab: YAML, the generated forward(), the graph, trained weights and ONNX."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from compiler.formatting import human_bytes
from ui import designer as d
from ui.tabs import state


def export_tab(s: d.DesignerSession, view: d.View, overrides: dict) -> None:
    text = st.session_state[state.YAML]
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
    text, file, name = st.session_state[state.YAML], s.file, result.spec.name
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
