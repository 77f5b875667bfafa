"""Studies: a YAML study file over specs (factors and their levels, seeds, a training budget,
probes, plots), run as trials on Optuna, reported as a table, plots and a page.

See docs/architecture.md (docs/studies.md comes with the runner; issue 21 is in progress).
"""
