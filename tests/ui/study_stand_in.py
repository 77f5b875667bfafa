"""A stand-in for compiler.study's `run_study` and `study_report` while they are not on main
yet (tests only: the Study tab's tests install it when compiler.study lacks them).

It follows the API the runner is written to: every cell without a record is run in turn with
compiler.study.trial.run_trial and appended to results.jsonl the moment it ends, `should_stop`
is checked between trials (and by the trainer: a stopped trial is left for next time), and the
report is `write_report` over the records.
"""

from __future__ import annotations

from compiler.study.records import TrialRecord, append_record, read_records
from compiler.study.report import write_report
from compiler.study.trial import run_trial
from compiler.train import TrainingInterrupted


def run_study(study, workers: int = 1, storage=None, on_trial=None, should_stop=None) -> list[TrialRecord]:
    done = {r.key for r in read_records(study.results_path)}
    for number, cell in enumerate(study.cells):
        if cell.key in done:
            continue
        if should_stop is not None and should_stop():
            break
        try:
            record = run_trial(study, cell, number, quiet=True, should_stop=should_stop)
        except TrainingInterrupted:
            break
        append_record(study.results_path, record)
        if on_trial is not None:
            on_trial(record)
    return read_records(study.results_path)


def study_report(study, out_dir):
    return write_report(study_name=study.name, study_text=study.text, records=read_records(study.results_path),
                        plots=list(study.document.plots), out_dir=out_dir, order=study.factors)
