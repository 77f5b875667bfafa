"""The Sweep tab: brief trainings at a few values of one var (ui/sweep.py does the work)."""

from __future__ import annotations

import streamlit as st

from ui import designer as d
from ui.tabs import state


def sweep_tab(s: d.DesignerSession, overrides: dict | None = None) -> None:
    """Train the spec briefly at a few values of one var; accuracy against parameters and MACs."""
    from ui import sweep as sw
    from ui import train_panel as tp

    job = s.sweep
    page = st.session_state
    text = page[state.YAML]
    names = sw.sweepable(s.base_vars)
    st.caption("Pick a var and a few values: each value is measured (parameters, MACs) and trained briefly with "
               "the same seed and settings, one after the other, in a background thread: a one-factor study "
               "(the Study tab runs whole study files). The other settings (dataset, learning rate, optimizer, "
               "device) come from the spec's `train:` section.")
    if not names:
        st.info("This spec has no numeric vars to sweep: add one under `vars:` (e.g. `width: 32`) and use it "
                "as `$width`.")
    else:
        if page.get("sweep_var") not in names:
            page["sweep_var"] = sw.default_var(names)
        var = st.selectbox("Var", names, key="sweep_var", format_func=lambda n: f"{n} (now {s.base_vars.get(n)!r})")
        stamp = (var, repr(s.base_vars[var]))
        if page.get("sweep_stamp") != stamp or "sweep_values" not in page:  # another var, or its value changed
            page["sweep_values"] = sw.suggest_values(s.base_vars[var])
            page["sweep_stamp"] = stamp
        defaults = tp.form_defaults(text)
        if page.get("sweep_defaults") != defaults or "sweep_batch" not in page:  # another train: section
            page.update(sweep_epochs=min(int(defaults["epochs"]), 2),
                         sweep_train=min(int(defaults["train_size"]), 1024),
                         sweep_val=min(int(defaults["val_size"]), 256), sweep_batch=int(defaults["batch_size"]))
            page["sweep_defaults"] = defaults
        with st.form("sweep_form"):
            values_text = st.text_input("Values", key="sweep_values",
                                        help=f"Numbers separated by commas or spaces (at most {sw.MAX_VALUES}).")
            c1, c2, c3, c4 = st.columns(4)
            epochs = c1.number_input("Epochs per value", 1, 10_000, key="sweep_epochs")
            train_size = c2.number_input("Train images", 1, 10_000_000, key="sweep_train")
            val_size = c3.number_input("Validation images", 1, 10_000_000, key="sweep_val")
            batch = c4.number_input("Batch size", 1, 65_536, key="sweep_batch")
            busy = job.running or s.train.running or s.study.running
            pressed = st.form_submit_button("Start sweep", disabled=busy, type="primary",
                                            help="One training at a time per session: wait for the Train tab's "
                                                 "run to end." if s.train.running else None)
        if pressed:
            try:
                values = sw.parse_values(values_text)
            except sw.SweepError as exc:
                st.error(f"Cannot sweep {var}: {exc}")
            else:
                count = page.get("sweep_count", 0) + 1
                page["sweep_count"] = count
                settings = sw.settings_for(text, dict(epochs=int(epochs), train_size=int(train_size),
                                                      val_size=int(val_size), batch_size=int(batch)))
                sweep = sw.Sweep(var, values, settings, text, {k: v for k, v in (overrides or {}).items() if k != var},
                                 s.file, label=f"sweep {count}")
                page["sweep"] = sweep
                sw.start(job, sweep, tp.runs_root(str(id(s))) / f"sweep{count}")
    sweep = page.get("sweep")
    if sweep is None:
        st.caption("No sweep yet in this session.")
        return

    def draw():
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

    state.live(job, draw)


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
            y=alt.Y("measure:Q", title=metric, scale=alt.Scale(zero=False)),
            tooltip=["value:N", "cost:Q", "measure:Q"])
        chart = (base.mark_line(point=True, color="#4c78a8")
                 + base.mark_text(dy=-10).encode(text=alt.Text("value:N")))
        col.altair_chart(chart.properties(title=f"{metric} vs {axis} ({sweep.var} labelled)"), width="stretch")
