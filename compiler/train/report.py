"""A run's words and numbers: the metrics row of an epoch (from its sums), the line printed for
it, and the closing summary."""

from __future__ import annotations

import sys
from typing import Any

from .outcomes import TrainResult
from .tasks import Task


def progress_bar(*, total: int, initial: int, desc: str, shown: bool):
    """An epoch's tqdm bar on standard error, disabled unless `shown` and a terminal."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, leave=False, disable=not shown or not sys.stderr.isatty(),
                dynamic_ncols=True, unit="batch", file=sys.stderr)


def fmt_pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def setup_lines(*, data, spec_name: str, params: int, device, cfg, processes: int) -> list[str]:
    """What a run trains on and with ("data: ...", "model: ..."); `processes` 0 in one process."""
    info = data.info
    procs = f" ({processes} processes x {cfg.batch_size // processes})" if processes else ""
    what = f"{info.num_classes} classes" if info.classes else info.task
    items = "images" if len(info.shape) == 3 else "sequences" if len(info.shape) == 2 else "samples"
    return [f"data: {info.name}, {what}, {'x'.join(map(str, info.shape))}, "
            f"{len(data.train_set):,} train / {len(data.val_set):,} val {items}",
            f"model: {spec_name}, {params:,} parameters on {device}; {cfg.optimizer} lr {cfg.lr:g} "
            f"{cfg.schedule}, batch {cfg.batch_size}{procs}, {cfg.epochs} epochs"
            + (f", amp {cfg.amp}" if cfg.amp != "off" else "")]


def epoch_row(*, task: Task, epoch: int, step: int, lr: float, sums: dict[str, float],
              val: dict[str, float]) -> dict[str, Any]:
    """metrics.jsonl's row of an epoch: means of the training and validation sums, null where the
    task has no such number."""
    k5, k1 = task.top5, task.has_accuracy
    n, vn = max(sums["count"], 1), max(val["count"], 1)
    return {
        "epoch": epoch, "step": step, "lr": lr,
        "train_loss": sums["loss"] / n, "train_top1": sums["correct1"] / n if k1 else None,
        "train_top5": sums["correct5"] / n if k5 else None,
        "val_loss": val["loss"] / vn, "val_top1": val["correct1"] / vn if k1 else None,
        "val_top5": val["correct5"] / vn if k5 else None,
        "images_per_s": sums["new_images"] / max(sums["train_seconds"], 1e-9),
        "seconds": sums["seconds"] + val.get("seconds", 0.0),
        "val_miou": val.get("miou"),  # segmentation only (None when classifying)
        # detection only: box (and mask) mAP at IoU 0.5 and averaged over 0.5:0.95
        "val_map50": val.get("map50"), "val_map": val.get("map"),
        "val_mask_map50": val.get("mask_map50"), "val_mask_map": val.get("mask_map"),
    }


def epoch_line(r: dict[str, Any], epochs: int) -> str:
    width = len(str(epochs))
    return (f"epoch {r['epoch']:>{width}}/{epochs}  "
            f"train loss {r['train_loss']:.4f}"
            + (f" top1 {fmt_pct(r['train_top1'])}" if r.get("train_top1") is not None else "")
            + f"  val loss {r['val_loss']:.4f}"
            + (f" top1 {fmt_pct(r['val_top1'])} top5 {fmt_pct(r['val_top5'])}"
               if r.get("val_top1") is not None else "") + "  "
            + (f"mIoU {fmt_pct(r['val_miou'])}  " if r.get("val_miou") is not None else "")
            + (f"mAP@0.5 {fmt_pct(r['val_map50'])} mAP {fmt_pct(r['val_map'])}  "
               if r.get("val_map50") is not None else "")
            + (f"mask mAP@0.5 {fmt_pct(r['val_mask_map50'])}  " if r.get("val_mask_map50") is not None
               else "")
            + f"{r['images_per_s']:,.0f} img/s  {r['seconds']:.1f} s")


def summary_line(result: TrainResult, weights: str) -> str | None:
    """"done: N epochs; val METRIC X (best Y at epoch E); weights in ...", None before any epoch."""
    best, final = result.best, result.final
    if final is None:
        return None
    key = result.metric
    metric = {"val_miou": "mIoU", "val_mask_map50": "mask mAP@0.5", "val_map50": "mAP@0.5", "val_top1": "top-1",
              "val_loss": "loss"}[key]
    value = fmt_pct if key != "val_loss" else (lambda x: "-" if x is None else f"{x:.4f}")
    return (f"done: {result.epochs} epochs; val {metric} {value(final[key])}"
            + (f" (best {value(best[key])} at epoch {best['epoch']})" if best else "")
            + f"; weights in {weights}")
