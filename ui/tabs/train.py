"""The Train tab: a run of the text in this session's TrainJob, its live curves, the history
and an evaluation of a finished run (ui/train_panel.py does the work)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui import designer as d
from ui.tabs import state


def train_tab(s: d.DesignerSession, overrides: dict | None = None) -> None:
    """Train the editor's text (with the sidebar's var overrides) in this session's TrainJob."""
    from ui import train_panel as tp

    job = s.train
    runs: list = st.session_state.setdefault("train_runs", [])
    text = st.session_state[state.YAML]
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
        pressed = st.form_submit_button("Start", disabled=job.running or s.sweep.running or s.study.running,
                                        type="primary")
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

    def draw():
        tp.sync(job, current)
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

    state.live(job, draw)
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

    from compiler.train.tasks import task_named

    task = run.progress.get("task", "classification")
    kind = task_named(task)
    if kind is not None and kind.predicts:  # masks or boxes, drawn over the images
        if st.toggle("Predictions on validation images", key="train_eval"):
            train_predictions(run, task)
        return
    if kind is not None and not kind.has_accuracy:  # a regression: its val loss is the whole story
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


def train_predictions(run, task: str, n: int = 8) -> None:
    """What a segmentation or detection run's model predicts on its first validation images
    (compiler.train.predictions.validation_predictions), truth and prediction drawn side by side."""
    from ui import drawing

    try:
        from compiler.train.predictions import validation_predictions

        predictions = validation_predictions(run.run_dir, n)
        samples = drawing.samples(predictions)
    except Exception as exc:  # noqa: BLE001 - shown, not raised
        st.warning(f"Predictions not available for this run: {type(exc).__name__}: {exc}")
        return
    drawer = drawing.drawer(predictions)
    chips = " ".join(f"<span style='background:{c};padding:0 6px;border-radius:3px'>&nbsp;</span> {name}"
                     for name, c in drawing.legend(predictions.classes, background=drawer.background))
    what = drawer.what
    st.caption(f"{run.label} ({task}): true {what} (left) and predicted {what} (right) on the first {len(samples)} "
               "validation images.")
    st.markdown(chips, unsafe_allow_html=True)
    for row in range(0, len(samples), 4):  # four pairs a row: truth, prediction, truth, prediction...
        cols = st.columns(8)
        for i, sample in enumerate(samples[row:row + 4]):
            cols[2 * i].image(sample["truth"], caption="true", width="stretch")
            cols[2 * i + 1].image(sample["prediction"], caption=f"predicted: {sample['caption']}", width="stretch")
