"""`blockgraph study check|run|report`: the command line's shell over compiler.study.

    blockgraph study check FILE [--quick]                      # the cells, every spec checked
    blockgraph study run FILE [--workers N] [--storage URL] [--quick]
    blockgraph study report FILE [--storage URL] [--quick] -o DIR
    blockgraph study schema [-o FILE]                          # the JSON Schema of study files

Problems in the study file (or a storage that cannot be opened) print as FILE:LINE:COL: text
and exit 1, like every other command; an interrupted run exits 130 and continues next time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_study_parser(sub) -> None:
    study = sub.add_parser("study", help="run a study file's trials on Optuna and report them (docs/studies.md)")
    commands = study.add_subparsers(dest="study_command", required=True, metavar="STUDY_COMMAND")

    def common(cmd: argparse.ArgumentParser) -> argparse.ArgumentParser:
        cmd.add_argument("file", metavar="STUDY", help="the study file (YAML)")
        cmd.add_argument("--quick", action="store_true", help="its quick form (the file's `quick:` section)")
        cmd.add_argument("--runs", default="runs", metavar="DIR",
                         help="where study directories go (default runs/: runs/study-NAME)")
        return cmd

    common(commands.add_parser("check", help="load the study, check every cell's spec and settings, list the cells"))
    run = common(commands.add_parser("run", help="run the trials not done yet (a killed run continues)"))
    run.add_argument("--workers", type=_positive, default=1, metavar="N",
                     help="worker processes on this machine (default 1); more machines: same --storage URL")
    run.add_argument("--storage", metavar="URL", help="Optuna storage URL (default sqlite:///runs/study-NAME/study.db)")
    run.add_argument("--threads", type=_positive, metavar="T", help="torch threads per worker (default cores // N)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    report = common(commands.add_parser("report", help="results table (CSV, JSON), plots (PNG, SVG) and a page"))
    report.add_argument("--storage", metavar="URL", help="also read the records kept in this Optuna storage")
    report.add_argument("-o", "--output", required=True, metavar="DIR", help="the folder to write the report into")
    schema = commands.add_parser("schema", help="print the JSON Schema of study files (for editors)")
    schema.add_argument("-o", "--output", metavar="FILE", help="write it to FILE instead of printing it")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def command(args) -> int:
    from .loader import load_study

    if args.study_command == "schema":
        return _schema(args)
    study = load_study(Path(args.file), quick=args.quick, runs=args.runs)
    return {"check": _check, "run": _run, "report": _report}[args.study_command](study, args)


def _schema(args) -> int:
    from .schema import dumps

    if args.output:
        Path(args.output).write_text(dumps(), encoding="utf-8")
    else:
        sys.stdout.write(dumps())
    return 0


def _check(study, args) -> int:
    print(f"{study.name}: {len(study.cells)} cells ({', '.join(f'{f}: {len(v)}' for f, v in study.factors.items())}; "
          f"seeds {sorted({c.seed for c in study.cells})})")
    for cell in study.cells:
        a = cell.variant.analysis
        print(f"  {cell.key}: {a.params:,} params, {a.macs:,} MACs")
    return 0


def _run(study, args) -> int:
    from ..train import TrainingInterrupted
    from .run import run_study

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    url = args.storage or study.default_storage
    try:
        records = run_study(study, workers=args.workers, storage=url, progress=not args.quiet, threads=args.threads)
    except (TrainingInterrupted, KeyboardInterrupt):  # KeyboardInterrupt: Ctrl-C while --workers N run
        print(f"blockgraph study: stopped; `blockgraph study run {args.file}` continues it", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"blockgraph study: error: {exc}", file=sys.stderr)
        return 1
    states = {state: sum(r.state == state for r in records) for state in ("complete", "failed", "refused")}
    print(f"{study.name}: {states['complete']} complete, {states['failed']} failed, {states['refused']} refused "
          f"of {len(study.cells)} cells; records in {study.results_path}")
    return 0


def _report(study, args) -> int:
    from .reporting import study_report

    from .runner import outdated_records, study_records

    files = study_report(study, Path(args.output), storage=args.storage)
    print(f"{files.markdown}, {files.html}, {files.results_csv} and {len(files.plots)} plots")
    done = {record.key for record in study_records(study, args.storage)}
    print(f"{len(done)} of {len(study.cells)} cells have a finished trial")
    outdated = outdated_records(study, args.storage)
    if outdated:
        print(f"note: {outdated} cells were trained with an older version of the study file (other settings) and "
              "are left out: run the study again to train them", file=sys.stderr)
    return 0
