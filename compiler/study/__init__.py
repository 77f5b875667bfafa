"""Studies: a YAML study file over specs (factors and their levels, seeds, a training budget,
probes, plots), run as trials on Optuna, reported as a table, plots and a page.

See docs/studies.md and docs/architecture.md.
"""
