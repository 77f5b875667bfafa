"""Hand-made trial records for the report and plot tests: factor `depth` ("20", "56") x two
seeds, with values and histories whose means and spreads the tests compute by hand, probe
results in the shapes the probes write, and one failed and one refused trial."""

from __future__ import annotations

from compiler.study.records import TrialRecord

VALUES = {("20", 0): 0.70, ("20", 1): 0.74, ("56", 0): 0.60, ("56", 1): 0.66}
"""(depth, seed) -> the trial's value (its best val_top1)."""
PARAMS = {"20": 270_000, "56": 850_000}
TRAIN_LOSS = {("20", 0): [2.0, 1.0], ("20", 1): [1.6, 0.8], ("56", 0): [2.2, 1.4], ("56", 1): [2.4, 1.2]}
"""(depth, seed) -> train_loss of epochs 1 and 2."""


def probes_of(depth: str, seed: int) -> dict:
    layers = 3 if depth == "20" else 5
    return {
        "signal_std": {"layers": [f"conv{i}" for i in range(layers)],
                       "activation_std": [1.0 + i + seed for i in range(layers)],
                       "gradient_std": [0.1 * (i + 1) for i in range(layers)]},
        "filter_similarity": {"layers": ["conv0", "conv1"], "mean_similarity": [0.1, 0.2],
                              "max_similarity": [0.5, 0.9]},
        "landscape": {"steps": [10, 20, 30], "loss_range": [[1.0, 2.0], [0.8, 1.5], [0.5, 1.0]],
                      "grad_distance_max": [1.0, 2.0, 3.0], "beta": [3.0, 2.0, 1.0]},
        "lesion": {"intact_error": 0.1,
                   "deleted": [{"block": f"layer{i}", "stride": 2 if i == 1 else 1, "error": 0.2 + 0.05 * i}
                               for i in range(4)],
                   "random": {"k": [1, 2, 3], "mean_error": [0.2, 0.3, 0.5]}},
        "dense_weights": {"blocks": {"dense1": [[1.0], [0.5, 0.25], [0.1, 0.2, 0.3]]}},
        "se_excitations": {"blocks": {"se1": [[0.1, 0.5, 0.9], [0.2, 0.4, 0.6]]}, "classes": ["cat", "dog"]},
        "class_maps": {"samples": [{"map": [[0.0, 1.0], [1.0, 0.0]], "label": 1, "prediction": 1},
                                   {"map": [[1.0, 1.0], [0.0, 0.0]], "label": 0, "prediction": 1}],
                       "classes": ["cat", "dog"]},
    }


def history_of(depth: str, seed: int) -> list[dict]:
    value = VALUES[(depth, seed)]
    losses = TRAIN_LOSS[(depth, seed)]
    return [{"epoch": 1, "train_loss": losses[0], "train_top1": 0.5, "val_loss": 1.5, "val_top1": value - 0.1},
            {"epoch": 2, "train_loss": losses[1], "train_top1": 0.75, "val_loss": 1.25, "val_top1": value}]


def make_records(with_probes: bool = True) -> list[TrialRecord]:
    records = []
    for trial, (depth, seed) in enumerate(VALUES):
        records.append(TrialRecord(
            study="depth", trial=trial, key=f"depth={depth},seed={seed}", levels={"depth": depth}, seed=seed,
            state="complete", value=VALUES[(depth, seed)], history=history_of(depth, seed),
            probes=probes_of(depth, seed) if with_probes else {}, params=PARAMS[depth],
            macs=PARAMS[depth] * 100, seconds=1.5))
    records.append(TrialRecord(study="depth", trial=4, key="depth=56,seed=2", levels={"depth": "56"}, seed=2,
                               state="failed", history=[{"epoch": 1, "train_loss": float("nan")}],
                               error="training diverged: the loss became nan at step 7"))
    records.append(TrialRecord(study="depth", trial=5, key="depth=110,seed=0", levels={"depth": "110"}, seed=0,
                               state="refused", error="plain.yaml:4:7: nodes[2]: unknown op 'conv<3>' & more"))
    return records
