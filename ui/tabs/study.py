"""The Study tab: open a study file, run its trials in the background, watch them finish and
see the report's plots (ui/study.py does the work)."""

from __future__ import annotations

import streamlit as st

from ui import designer as d
from ui.problems import error_text
from ui.tabs import state

SLOT = "study_slot"
"""Session key of this session's ui.study.StudySlot (the opened study, loaded once per change)."""


def study_tab(s: d.DesignerSession) -> None:
    """Choose a study file, show its problems or its cells, Start / Stop it, show its report."""
    from ui import study as su

    job = s.study
    page = st.session_state
    slot = page.setdefault(SLOT, su.StudySlot())
    st.caption("A study trains every cell of a study file (its factors' levels × seeds) one after the other in a "
               "background thread and keeps each finished trial in the study's results.jsonl: a stopped study "
               "continues with the trials not done. See docs/studies.md.")
    page.setdefault("study_path", "")
    page.setdefault("study_runs", su.RUNS)
    files = su.gallery()
    left, right = st.columns([1, 2])
    if files:
        left.selectbox("Gallery", files, index=None, key="study_gallery", placeholder="a study of studies/",
                       disabled=job.running, on_change=lambda: page.update(study_path=page["study_gallery"] or ""))
    else:
        left.caption("No study files in studies/ yet: type a path.")
    path = right.text_input("Study file", key="study_path", disabled=job.running,
                            help="A study file's path, relative to the repository or absolute.")
    c1, c2, c3 = st.columns([2, 1, 1], vertical_alignment="bottom")
    runs = c1.text_input("Runs folder", key="study_runs", disabled=job.running,
                         help="Where the study writes (runs/study-NAME): relative to the repository or absolute.")
    quick = c2.checkbox("Quick", key="study_quick", disabled=job.running,
                        help="The study file's `quick:` budget: fewer seeds, shorter training (its own folder).")
    if c3.button("Reload", key="study_reload", disabled=job.running, help="Read the study file and its specs again."):
        slot.forget()
    if not path.strip():
        st.info("Choose a study file.")
        return
    opened = slot.open(path, quick=quick, runs=runs)
    if opened.problems:
        n = len(opened.problems)
        st.error(f"{n} problem{'s' if n != 1 else ''} in {su.shown_path(opened.path)}:")
        for problem in opened.problems[:state.MAX_SHOWN_PROBLEMS]:
            st.error(problem.title, icon=":material/error:")
            if problem.quote:
                st.code(problem.quote, language=None)
        if n > state.MAX_SHOWN_PROBLEMS:
            st.caption(f"… and {n - state.MAX_SHOWN_PROBLEMS} more problems.")
        return
    study = opened.study
    study_controls(s, study)

    def draw():
        records = su.records_of(study)
        done = su.progress(study, records)
        st.write(f"**{study.name}**: {len(study.cells)} trials over "
                 f"{', '.join(study.factors) or 'no factor'} in `{su.shown_path(study.out_dir)}`"
                 + (f": **{job.state}**" if job.state != "idle" else ""))
        now = su.training_now(job.events()) if job.running else None
        st.progress(done.fraction, text=done.text + (f"; training {now}" if now else ""))
        if job.state == "failed":  # not a Stop (TrainingInterrupted: "stopped")
            st.error(f"The study stopped on an unexpected error: {error_text(job.error, str(opened.path))}")
        if records:
            st.caption(f"value: the best epoch's {su.metric_of(records)}")
        st.dataframe(su.cell_rows(study, records), hide_index=True, width="stretch", column_config={
            "params": st.column_config.NumberColumn("params", format="localized"),
            "error": st.column_config.TextColumn("error", width="large")})
        if job.running:
            st.button("Stop study", key="study_stop", on_click=job.cancel, disabled=job.stop_requested,
                      help="Stops the trial in progress (at its next step, with a checkpoint) and the study; "
                           "Start study continues it later, that trial from its checkpoint.")

    state.live(job, draw)
    if not job.running:
        study_report(study, job)


def study_controls(s: d.DesignerSession, study) -> None:
    """The study's description and its Start button (one training at a time per session)."""
    from ui import study as su

    job = s.study
    if study.document.about:
        st.markdown(study.document.about)
    busy = job.running or s.train.running or s.sweep.running
    if st.button("Start study", key="study_start", type="primary", disabled=busy,
                 help="Another run of this session is in progress." if busy and not job.running else None):
        su.start(job, study)
        st.rerun()


def study_report(study, job: d.TrainJob) -> None:
    """The report's plots (written when a run ends, or by Make report) and its page."""
    from ui import study as su

    records = su.records_of(study)
    if not records:
        return
    st.markdown("##### Report")
    failed = su.report_error(job.events())
    if failed:
        st.warning(f"The report of the last run could not be made: {failed}")
    if st.button("Make report", key="study_make_report", help="Draw the report from the records kept so far."):
        try:
            su.make_report(study)
        except Exception as exc:  # noqa: BLE001 - shown, not raised
            st.warning(f"The report could not be made: {type(exc).__name__}: {exc}")
    plots = su.report_plots(study, records)
    page = su.report_page(study)
    if page is None:
        st.caption("No report yet: press Make report.")
        return
    st.caption(f"In `{su.shown_path(su.report_dir(study))}` (report.html shows its plots from plots/ beside it).")
    st.download_button("Download report.html", page.read_bytes(), file_name=f"{study.name}-report.html",
                       mime="text/html", key="study_download")
    for col, plot in zip(st.columns(2) * len(plots), plots):
        col.image(str(plot.png), caption=plot.title)
