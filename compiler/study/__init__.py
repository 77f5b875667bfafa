"""Studies: a YAML study file over specs (factors, seeds, probes, plots), its trials run on
Optuna, its results reported as tables, plots and a page. See docs/studies.md."""

from .loader import Cell, Study, load_study
from .reporting import study_report
from .run import run_study

__all__ = ["Cell", "Study", "load_study", "run_study", "study_report"]
