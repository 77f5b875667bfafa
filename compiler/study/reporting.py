"""A loaded study's report: its records (this machine's results.jsonl and, given a storage URL,
every worker's records kept with the Optuna trials) drawn by compiler/study/report.py, with the
levels in the study file's order and the probes named by their labels."""

from __future__ import annotations

from pathlib import Path

from .loader import Study
from .report import ReportFiles, write_report
from .runner import study_records


def study_report(study: Study, out_dir: str | Path, storage: str | None = None) -> ReportFiles:
    """Write the report of every finished trial of `study` into `out_dir`."""
    kinds = {p.label: p.probe.name for cell in study.cells for p in cell.probes}
    title = f"{study.name} (quick)" if study.quick else study.name
    return write_report(study_name=study.name, study_text=study.text, records=study_records(study, storage),
                        plots=list(study.document.plots), out_dir=out_dir, title=title, order=study.factors,
                        probe_kinds=kinds)
