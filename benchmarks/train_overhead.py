"""The trainer against a bare training loop: how much of a step's time is the trainer's own.

    .venv/bin/python benchmarks/train_overhead.py [--rounds 3] [--epochs 2] [--train-size 2048]
        [--batch-size 128] [--threads 2] [--specs specs/default.yaml specs/resnet20_cifar.yaml]
    .venv/bin/python benchmarks/train_overhead.py --quick      # tiny sizes, one round (seconds)
    .venv/bin/python benchmarks/train_overhead.py --profile    # cProfile of one trainer run

For each spec, every round runs both sides once, alternating which goes first (the machine's
load drifts; alternating spreads the drift over both):

- trainer: `compiler.train(spec, dataset="shapes", size=32, ...)` with SGD (the trainer's
  default momentum and weight decay), `epochs` epochs of `train_size` images;
- bare: the same model (`compiler.build(spec, seed=...)`), the same images generated once by
  `compiler.data.build_dataset` and stacked into one tensor before the clock starts, the same
  optimizer and parameter groups, and nothing but
  `for x, y in batches: zero_grad(); loss = ce(model(x), y); loss.backward(); step()`.

Both run under the same `torch.set_num_threads`. The trainer's wall-clock figure is the
train-phase images/s it reports itself (`images_per_s` of each epoch's row in
`TrainResult.history`: the images of the epoch over the seconds from its first batch asked of
the data loader to its last optimizer step), because that is the number a user sees and the
issue's goal is about; timing around `compiler.train` would add setup, validation and
checkpoints, which are not on the step's critical path. The bare loop is timed the same way
(first batch to last step); over the epochs, a side's figure is all its images over all its
train seconds.

On a machine shared with other work the wall clock swings by tens of percent from one minute to
the next, so the same phases are also measured in CPU time of the process (`time.process_time`),
which other programs hardly change: the trainer's through its hooks (an epoch's phase runs from
`on_start` or the previous `on_epoch` to its last `on_step`, so it includes anything the
trainer does before the first batch), the bare loop's around its epochs. The third pair of
columns is the median CPU time of one step (the first of each epoch left out; the trainer's
between two `on_step` calls): it tells a per-step cost (syncs, metrics, hooks, collating) from
a per-epoch one (the data loader's start, rendering the dataset). The table gives the medians
over rounds and trainer / bare of the medians (bare / trainer for step times): 1 means the
trainer adds nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import compiler  # noqa: E402
from compiler.data import build_dataset  # noqa: E402
from compiler.train import TrainConfig  # noqa: E402

SPECS = ("specs/default.yaml", "specs/resnet20_cifar.yaml")
"""The default spec and a deeper zoo spec (ResNet-20: 20 layers, three times the nodes of the
default for about the same MACs per image) that the 2-core CPU trains in seconds an epoch."""
SIZE = 32


@dataclass(frozen=True)
class Settings:
    """What both sides of a comparison share."""

    train_size: int
    val_size: int
    batch_size: int
    epochs: int
    threads: int
    seed: int = 0


@dataclass
class Side:
    """One side's figures of one round."""

    images_per_s: float
    """Wall clock: images over train-phase seconds (the trainer's own `images_per_s`)."""
    cpu_images_per_s: float
    """Images over the process's CPU seconds in the train phase (time.process_time): what
    other programs on the machine hardly change."""
    step_cpu_s: float
    """Median CPU seconds of a step, the first step of each epoch left out."""
    hook_images_per_s: float
    """Wall clock over the same phases as the CPU time (for the trainer: from its hooks, to
    check its own figure; for the bare loop: its wall figure again)."""


@dataclass
class SpecResult:
    spec: str
    trainer: list[Side] = field(default_factory=list)
    bare: list[Side] = field(default_factory=list)

    def median(self, side: str, key: str) -> float:
        return statistics.median(getattr(s, key) for s in getattr(self, side))

    def ratio(self, key: str) -> float:
        """trainer / bare of the medians (for step times bare / trainer): 1 = no overhead."""
        t, b = self.median("trainer", key), self.median("bare", key)
        return b / t if key == "step_cpu_s" else t / b


def _classes() -> int:
    _, info = build_dataset("shapes", "val", size=SIZE, val_size=1, progress=False)
    return info.num_classes


def _load(spec_path: str) -> compiler.Spec:
    return compiler.load(ROOT / spec_path, vars={"classes": _classes()})


class _Clock:
    """The trainer's train phases seen through its hooks: an epoch's phase runs from the
    previous hook call that ended setup or an epoch (on_start, on_epoch) to its last on_step."""

    def __init__(self):
        self.cpu = self.wall = 0.0
        self.steps: list[float] = []
        self.mark = self.last = self.wall_mark = self.wall_last = None

    def on_start(self, info: dict) -> None:
        self.mark, self.wall_mark = time.process_time(), time.perf_counter()

    def on_step(self, info: dict) -> None:
        now = time.process_time()
        if info["step"] > 1:
            self.steps.append(now - self.last)
        self.last, self.wall_last = now, time.perf_counter()

    def on_epoch(self, row: dict) -> None:
        self.cpu += self.last - self.mark
        self.wall += self.wall_last - self.wall_mark
        self.on_start(row)


def _run_trainer(spec: compiler.Spec, s: Settings, run_dir: Path) -> Side:
    clock = _Clock()
    result = compiler.train(spec, quiet=True, dataset="shapes", size=SIZE, train_size=s.train_size,
                            val_size=s.val_size, epochs=s.epochs, batch_size=s.batch_size, optimizer="sgd",
                            workers=0, device="cpu", seed=s.seed, run_dir=str(run_dir), on_start=clock.on_start,
                            on_step=clock.on_step, on_epoch=clock.on_epoch)
    seconds = sum(1 / row["images_per_s"] for row in result.history)  # per image of each epoch
    images = s.epochs * (s.train_size // s.batch_size) * s.batch_size
    return Side(images_per_s=len(result.history) / seconds, cpu_images_per_s=images / clock.cpu,
                step_cpu_s=statistics.median(clock.steps), hook_images_per_s=images / clock.wall)


def _batches(s: Settings) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The training images as the trainer's data gives them (normalised), generated once, as
    full batches of one tensor."""
    dataset, _ = build_dataset("shapes", "train", size=SIZE, train_size=s.train_size, seed=s.seed, progress=False)
    items = [dataset[i] for i in range(len(dataset))]
    images = torch.stack([x for x, _ in items])
    labels = torch.tensor([y for _, y in items])
    full = len(items) // s.batch_size * s.batch_size
    return list(zip(images[:full].split(s.batch_size), labels[:full].split(s.batch_size)))


def _optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    """SGD with the trainer's defaults (read from TrainConfig, not copied) and its two groups:
    weight decay on weight matrices and kernels only."""
    cfg = TrainConfig(optimizer="sgd")
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
    return torch.optim.SGD([g for g in groups if g["params"]], lr=cfg.lr, momentum=cfg.momentum,
                           nesterov=cfg.nesterov)


def _run_bare(spec: compiler.Spec, s: Settings, batches) -> Side:
    model = compiler.build(spec, seed=s.seed)
    model.train()
    optimizer = _optimizer(model)
    criterion = torch.nn.CrossEntropyLoss()
    seconds = cpu = 0.0
    steps = []
    for _ in range(s.epochs):
        start, cpu_start = time.perf_counter(), time.process_time()
        previous = cpu_start
        for i, (x, y) in enumerate(batches):
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            now = time.process_time()
            if i > 0:
                steps.append(now - previous)
            previous = now
        seconds += time.perf_counter() - start
        cpu += time.process_time() - cpu_start
    images = s.epochs * sum(len(y) for _, y in batches)
    return Side(images_per_s=images / seconds, cpu_images_per_s=images / cpu, step_cpu_s=statistics.median(steps),
                hook_images_per_s=images / seconds)


def measure(spec_path: str, s: Settings, rounds: int, say=None) -> SpecResult:
    say = say or (lambda text: print(text, flush=True))
    spec = _load(spec_path)
    batches = _batches(s)
    # warm-up, untimed: the process's first steps of a model create its kernels' primitives and
    # grow the allocator's pools; whichever side ran first in round 1 would pay for them
    _run_bare(spec, Settings(**{**s.__dict__, "epochs": 1}), batches[:2])
    out = SpecResult(spec_path)
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            order = ("trainer", "bare") if r % 2 == 0 else ("bare", "trainer")
            for side in order:
                if side == "trainer":
                    out.trainer.append(_run_trainer(spec, s, Path(tmp) / f"run{r}"))
                else:
                    out.bare.append(_run_bare(spec, s, batches))
            t, b = out.trainer[-1], out.bare[-1]
            say(f"  {spec_path} round {r + 1}: wall {t.images_per_s:6.1f} / {b.images_per_s:6.1f} img/s "
                f"({t.images_per_s / b.images_per_s:.3f}), cpu {t.cpu_images_per_s:6.1f} / {b.cpu_images_per_s:6.1f} "
                f"img/s ({t.cpu_images_per_s / b.cpu_images_per_s:.3f}), step {1e3 * t.step_cpu_s:.1f} / "
                f"{1e3 * b.step_cpu_s:.1f} cpu ms; trainer wall by hooks {t.hook_images_per_s:.1f} img/s")
    return out


def table(results: list[SpecResult]) -> str:
    """Medians over the rounds, trainer then bare, and their ratio."""
    columns = (("images_per_s", "wall img/s", 1.0), ("cpu_images_per_s", "cpu img/s", 1.0),
               ("step_cpu_s", "step cpu ms", 1e3))
    width = max(len(r.spec) for r in results)
    lines = [f"{'spec':<{width}}" + "".join(f"  {label:>15} {'bare':>7} {'ratio':>6}" for _, label, _ in columns)]
    for r in results:
        cells = "".join(f"  {scale * r.median('trainer', key):>15.1f} {scale * r.median('bare', key):>7.1f} "
                        f"{r.ratio(key):>6.3f}" for key, _, scale in columns)
        lines.append(f"{r.spec:<{width}}{cells}")
    return "\n".join(lines)


def profile(spec_path: str, s: Settings, top: int = 30) -> str:
    """cProfile of the trainer's train phases only (on_start or on_epoch to an epoch's last
    on_step: no setup, validation or checkpoints), by own CPU time (process time: what other
    programs on the machine do is not charged to it)."""
    spec = _load(spec_path)
    prof = cProfile.Profile(time.process_time)

    def on_step(info: dict) -> None:
        if info["step"] == info["steps"]:
            prof.disable()

    with tempfile.TemporaryDirectory() as tmp:
        compiler.train(spec, quiet=True, dataset="shapes", size=SIZE, train_size=s.train_size, val_size=s.val_size,
                       epochs=s.epochs, batch_size=s.batch_size, optimizer="sgd", workers=0, device="cpu",
                       seed=s.seed, run_dir=str(Path(tmp) / "run"), on_start=lambda info: prof.enable(),
                       on_step=on_step, on_epoch=lambda row: prof.enable())
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--specs", nargs="+", default=list(SPECS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=2048)
    parser.add_argument("--val-size", type=int, default=256, help="validation is not timed; keep it small")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of both sides (default 1: on a shared machine a second thread "
                             "waits for a busy core and the figures swing by 5x)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one round: a smoke run")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one trainer run of the first spec")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.epochs, args.train_size, args.val_size, args.batch_size = 1, 1, 96, 16, 16
    torch.set_num_threads(args.threads)
    s = Settings(train_size=args.train_size, val_size=args.val_size, batch_size=args.batch_size,
                 epochs=args.epochs, threads=args.threads, seed=args.seed)
    print(f"shapes {SIZE}x{SIZE}, {s.train_size} train images, batch {s.batch_size}, {s.epochs} epoch(s), sgd, "
          f"cpu, {s.threads} thread(s), {args.rounds} round(s) alternating", flush=True)
    if args.profile:
        print(profile(args.specs[0], s))
        return 0
    results = [measure(path, s, args.rounds) for path in args.specs]
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
