"""The designer's Train tab logic, free of Streamlit so it can be tested directly.

A run is `compiler.train` in TrainJob's daemon thread; its hooks write events into the job
(never st.*). Stop sets the job's event, which `should_stop` polls every step: the trainer
saves a checkpoint and raises TrainingInterrupted (state "stopped"); Resume calls
compiler.train(resume=run_dir). A heartbeat (job.last_seen, refreshed by the page's fragment)
stops a run whose browser tab went away.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ui.designer import load_text
from ui.problems import UNTITLED, error_text

FORM_FIELDS = ("dataset", "epochs", "batch_size", "lr", "optimizer", "device", "train_size", "val_size")
OPTIMIZERS = ("sgd", "adamw")


def devices() -> list[str]:
    """cpu, plus cuda/mps only where this machine has them."""
    import torch

    out = ["cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.append("mps")
    return out


def datasets() -> list[str]:
    from compiler.data import dataset_names

    names = list(dataset_names())
    return ["shapes"] + [n for n in names if n != "shapes"]


def form_defaults(text: str) -> dict[str, Any]:
    """The form's initial values: TrainConfig's defaults, then the spec's `train:` section."""
    from compiler.train import TrainConfig

    base = TrainConfig()
    values = {name: getattr(base, name) for name in FORM_FIELDS}
    values.update(lr=values["lr"] or 0.1, train_size=values["train_size"] or 1024,
                  val_size=values["val_size"] or 256)
    try:
        section = (yaml.safe_load(text) or {}).get("train") or {}
    except (yaml.YAMLError, AttributeError):
        section = {}
    if isinstance(section, dict):
        values.update({k: v for k, v in section.items() if k in FORM_FIELDS and v is not None})
    if values["device"] not in devices():
        values["device"] = "cpu"
    return values


@dataclass
class Run:
    """One run of this session, as the history shows it."""

    label: str
    spec_name: str
    settings: dict[str, Any]
    run_dir: Path
    rows: list[dict] = field(default_factory=list)
    state: str = "running"
    message: str = ""
    progress: dict = field(default_factory=dict)
    text: str = ""
    overrides: dict = field(default_factory=dict)
    file: str = UNTITLED
    """The open file the text came from: its problems and `extends:` are read against it."""

    @property
    def weights(self) -> Path:
        return self.run_dir / "model.safetensors"

    @property
    def task(self) -> str:
        """What the run learns, as the trainer reported it (classification until it starts)."""
        return self.progress.get("task", "classification")

    @property
    def measure(self) -> str:
        """The row key its best epoch is chosen by (as TrainResult.metric): val_top1, val_miou,
        val_map50 or val_mask_map50."""
        from ui.sweep import metric_of

        return metric_of(self.rows)

    def best(self) -> dict | None:
        from compiler.train.outcomes import best_of

        return best_of(self.rows, self.measure)

    def table(self) -> list[dict]:
        """The epoch rows with the run's task's columns only, under their names (a
        segmentation run's top-1 is its pixel accuracy; no empty mAP columns when classifying)."""
        from compiler.train.metrics import labelled

        return labelled(self.rows, self.task)


def runs_root(session_id: str | None = None) -> Path:
    """A per-session temporary folder for run directories (never a user-typed path)."""
    root = Path(tempfile.gettempdir()) / "blockgraph-designer" / (session_id or "session")
    root.mkdir(parents=True, exist_ok=True)
    return root


def check_trainable(text: str, overrides: dict, file: str) -> str | None:
    """None when the spec loads and builds; else a readable message naming the open file (no
    traceback, no command-line flags: ui/problems.py)."""
    import compiler

    try:
        compiler.analyze(load_text(text, overrides or None, file))
    except Exception as exc:  # noqa: BLE001 - shown to the user as a message
        return error_text(exc, file)
    return None


def _worker(text: str | None, overrides: dict, settings: dict, run_dir: Path, resume: bool, file: str = UNTITLED,
            *, job) -> Any:
    import compiler

    hooks = dict(on_start=lambda info: job.report(kind="start", **_plain(info)),
                 on_step=lambda info: job.report(kind="step", **_plain(info)),
                 on_epoch=lambda row: job.report(kind="epoch", **_plain(row)),
                 should_stop=job.should_stop)
    if resume:
        result = compiler.train(resume=str(run_dir), quiet=True, **hooks)
    else:
        spec = load_text(text, overrides or None, file)  # loaded as the open file: its name in every problem
        result = compiler.train(spec, quiet=True, run_dir=str(run_dir), **settings, **hooks)
    job.weights_path = Path(result.run_dir) / "model.safetensors"
    return result


def _plain(info: dict) -> dict:
    from ui.designer.jobs import plain_info

    return plain_info(info)


def start(job, runs: list[Run], text: str, overrides: dict, settings: dict, spec_name: str, root: Path,
          file: str = UNTITLED) -> Run:
    """Start a new run of `text` (the open file `file`) in `job` and add it to `runs`."""
    label = f"run {len(runs) + 1}"
    run_dir = root / f"run{len(runs) + 1}"
    run = Run(label, spec_name, dict(settings), run_dir, text=text, overrides=dict(overrides), file=file)
    runs.append(run)
    job.start(_worker, text, dict(overrides), dict(settings), run_dir, False, file, label=label)
    job.run_dir = run_dir
    return run


def resume(job, run: Run) -> None:
    """Continue a stopped run from its checkpoint."""
    run.state, run.message = "running", ""
    job.start(_worker, None, {}, {}, run.run_dir, True, label=run.label)
    job.run_dir = run.run_dir


def sync(job, run: Run | None) -> None:
    """Fold the job's new events into the run it belongs to (called from the page script)."""
    if run is None:
        return
    rows, progress = [], {}
    for event in job.events():
        if event.get("kind") == "epoch":
            rows.append({k: v for k, v in event.items() if k not in ("kind", "time")})
        elif event.get("kind") in ("step", "start"):
            progress.update({k: v for k, v in event.items() if k != "time"})
    known = {r["epoch"] for r in run.rows}
    run.rows.extend(r for r in rows if r["epoch"] not in known)
    run.rows.sort(key=lambda r: r["epoch"])
    run.progress.update(progress)
    from compiler.train import TrainingInterrupted

    state = job.state
    if state == "failed" and isinstance(job.error, TrainingInterrupted):
        state = "stopped"
    run.state = state
    if job.error is not None and not isinstance(job.error, TrainingInterrupted):
        run.message = error_text(job.error, run.file)
    if run.weights.is_file():
        job.weights_path = run.weights


def curves(rows: list[dict], task: str) -> dict[str, dict[str, str]]:
    """Metric -> {split: row key} of a `task` run's curves: the loss, then each validation
    measure the rows hold, named as the task names it ("top-1", "pixel acc", "mIoU",
    "mAP@0.5"), with its train counterpart where there is one."""
    from compiler.train.metrics import task_columns

    columns = task_columns(task)
    out = {"loss": {"train": "train_loss", "val": "val_loss"}}
    for key, label in columns.items():
        if key.startswith("val_") and key not in ("val_loss", "val_top5") and any(r.get(key) is not None for r in rows):
            train = "train_" + key[4:]
            out[label.removeprefix("val ")] = {**({"train": train} if train in columns else {}), "val": key}
    return out


def history_rows(runs: list[Run], labels: list[str]) -> list[dict]:
    """Long-form rows (run, epoch, metric, split, value) of the chosen runs, for an overlaid
    chart; metrics named per run's task (see `curves`)."""
    out = []
    for run in runs:
        if run.label not in labels:
            continue
        for metric, keys in curves(run.rows, run.task).items():
            for split, key in keys.items():
                out.extend({"run": run.label, "epoch": row["epoch"], "metric": metric, "split": split,
                            "value": row[key]} for row in run.rows if row.get(key) is not None)
    return out


def measure_name(run: Run) -> str:
    """The name of what the run's best epoch is chosen by: "top-1", "mIoU", "mAP@0.5"..."""
    from compiler.train.metrics import task_columns

    return task_columns(run.task).get(run.measure, run.measure).removeprefix("val ")


def best_points(runs: list[Run], labels: list[str]) -> list[dict]:
    """Each chosen run's best epoch, by its task's measure (as TrainResult.best)."""
    out = []
    for run in runs:
        best = run.best() if run.label in labels else None
        if best is not None:
            out.append({"run": run.label, "epoch": best["epoch"], "value": best[run.measure],
                        "metric": measure_name(run)})
    return out


def summary(run: Run) -> dict[str, Any]:
    """A run's row in the history table: epochs done (`epochs`, from the settings, is how many
    it was asked for), its best epoch by its own measure, named."""
    best = run.best() or {}
    return {"run": run.label, "spec": run.spec_name, "state": run.state, "epochs done": len(run.rows),
            "measure": f"val {measure_name(run)}", "best": best.get(run.measure), "best epoch": best.get("epoch"),
            "run dir": str(run.run_dir), **run.settings}


def evaluate(run: Run, limit: int = 256) -> dict:
    """The run's model.safetensors on (at most `limit` of) its validation set: the confusion
    matrix (rows: true class, columns: predicted) and a few samples (image, true, predicted)."""
    import torch
    from safetensors.torch import load_file

    import compiler
    from compiler.data import build_dataset, input_options
    from compiler.data.compat import dataset_values
    from compiler.spec import with_vars
    from compiler.train.tasks import image_input

    spec = load_text(run.text, run.overrides or None, run.file)
    name = run.settings.get("dataset", "shapes")
    val_size = min(int(run.settings.get("val_size") or limit), limit)
    options = input_options(name, spec.inputs[image_input(spec)])  # image size, or a sequence's steps / rows
    size = options.pop("size", None)
    dataset, info = build_dataset(name, "val", size=size, val_size=val_size,
                                  **({"train_size": 1} if name == "shapes" else {}), **options)
    values = dataset_values(spec, info)  # vars bound to the dataset (`classes`), as the run set them
    model = compiler.build(with_vars(spec, values) if values else spec, device="cpu")
    model.load_state_dict(load_file(str(run.weights), device="cpu"))
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=64)
    classes = list(getattr(info, "classes", None) or [])
    trues, preds, images = [], [], []
    with torch.no_grad():
        for x, y in loader:
            trues.append(y)
            preds.append(model(x).argmax(1))
            if len(images) < 16:
                images.extend(x[: 16 - len(images)])
    true, pred = torch.cat(trues), torch.cat(preds)
    n = max(len(classes), int(true.max()) + 1, int(pred.max()) + 1)
    matrix = torch.zeros(n, n, dtype=torch.long)
    matrix.index_put_((true, pred), torch.ones_like(true), accumulate=True)
    names = classes + [str(i) for i in range(len(classes), n)]
    samples = []
    for i, img in enumerate(images):
        pic = img - img.min()
        pic = pic / pic.max().clamp(min=1e-6)  # [C, H, W] -> [H, W, C]; a sequence [T, F] is drawn as it is
        pic = (pic.permute(1, 2, 0) if pic.dim() == 3 else pic).numpy()
        samples.append({"image": pic, "true": names[int(true[i])], "pred": names[int(pred[i])]})
    return {"classes": names, "matrix": matrix.tolist(), "accuracy": float((true == pred).float().mean()),
            "samples": samples}
