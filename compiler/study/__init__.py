"""Studies: a YAML study file over specs (factors, seeds, probes, plots), its trials run on
Optuna, its results reported as tables, plots and a page. See docs/studies.md."""

from .loader import Cell, Study, load_study

__all__ = ["Cell", "Study", "load_study"]
