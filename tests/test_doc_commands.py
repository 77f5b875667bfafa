"""Every command of README.md and docs/*.md runs as written (see doc_commands.py for what a
command is and what it must do).

All pages run in one temporary copy of the repository, in the order of PAGES (a page may use
what an earlier one made, e.g. export.md the weights of weights.md), each page's commands in
page order, with the project's venv first on PATH. The files the pages use without showing
them whole (tiny.yaml is the README's spec, broken.yaml and unused.yaml spec-language.md's
examples, ...) are made first, from the pages where they can be. A command too long for CI, or
that needs what this machine lacks, is in STAND_INS with the reason and a cheaper command on
the same path; any other command, including one added to the docs later, runs verbatim.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from doc_commands import Command, commands
from test_budget import TRILLION  # cli.md's trillion.yaml: two linears 1,000,000 -> 1,000,000 -> 10

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
PAGES = ["README.md", "docs/cli.md", "docs/weights.md", "docs/export.md", "docs/training.md"]
PAGES += sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md") if str(p.relative_to(ROOT)) not in PAGES)
TIMEOUT = 300  # seconds a verbatim command may take; longer ones belong in STAND_INS

SHORT = "--epochs 1 --set train_size=64 --set val_size=32 --batch-size 32"
"""Appended to a long training command: later options win, so it is the same run, shorter."""


@dataclass(frozen=True)
class StandIn:
    reason: str
    command: str
    """Run instead (`{port}` is a free port)."""
    serves: bool = False
    """The command serves until stopped: wait until {port} answers, SIGTERM it, see it gone."""


def _short(command: str, reason: str = "trains 5-10 epochs of thousands of images (minutes to hours on "
                                          "2 cores)") -> tuple[str, StandIn]:
    return command, StandIn(reason, f"{command} {SHORT}")


CUDA_ONLY = ("needs a CUDA device and a local copy of CIFAR-10 (nothing is downloaded); "
             "tests/data covers reading CIFAR-10")
STAND_INS: dict[str, StandIn] = dict([
    ("./dev start", StandIn("serves the designer until stopped", "./dev start --port {port}", serves=True)),
    ("./dev test", StandIn("is this test suite: a part of it stands in",
                           "./dev test -q -p no:cacheprovider tests/test_expr.py")),
    (".venv/bin/blockgraph ui specs/resnet18.yaml",
     StandIn("serves the designer until stopped", ".venv/bin/blockgraph ui specs/resnet18.yaml --port {port}", True)),
    ("blockgraph ui specs/resnet50.yaml",
     StandIn("serves the designer until stopped", "blockgraph ui specs/resnet50.yaml --port {port}", True)),
    _short(".venv/bin/blockgraph train specs/default.yaml"),
    _short("torchrun --nproc-per-node 2 -m compiler train specs/default.yaml"),
    _short("blockgraph train specs/default.yaml"),
    _short("blockgraph train specs/default.yaml --epochs 5 --run-dir runs/small"),
    ("blockgraph train --resume runs/small --epochs 8",
     StandIn("seven more epochs of 10,000 images", "blockgraph train --resume runs/small --epochs 2")),
    ("torchrun --nproc-per-node 4 -m compiler train specs/default.yaml --batch-size 512",
     StandIn("4 processes on 10,000 images; this machine has 2 cores",
             f"torchrun --nproc-per-node 2 -m compiler train specs/default.yaml {SHORT}")),
    ("blockgraph train specs/resnet20_cifar.yaml -D classes=6 --epochs 30 --lr 0.2 --set warmup_epochs=2",
     StandIn("30 epochs of 10,000 images; the warm-up needs more than 2 epochs",
             "blockgraph train specs/resnet20_cifar.yaml -D classes=6 --epochs 3 --lr 0.2 --set warmup_epochs=2 "
             "--set train_size=32 --set val_size=16 --batch-size 16")),
    ("blockgraph train specs/default.yaml --dataset cifar10 --workers 4 --amp bf16",
     StandIn("needs a local copy of CIFAR-10 (nothing is downloaded; tests/data covers reading it): the same "
             "workers and bf16 on shapes", f"blockgraph train specs/default.yaml --workers 2 --amp bf16 {SHORT}")),
    ("blockgraph train --resume runs/fast --epochs 40",
     StandIn("39 more epochs", "blockgraph train --resume runs/fast --epochs 2")),
    ("blockgraph train specs/resnet20_cifar.yaml --dataset cifar10 --device cuda --batch-size 256 "
     "--workers 8 --amp bf16 --set channels_last=true",
     StandIn(CUDA_ONLY, "blockgraph train specs/resnet20_cifar.yaml -D classes=6 --device cpu --workers 2 --amp bf16 "
             f"--set channels_last=true {SHORT}")),
    ("blockgraph train SPEC --device cuda:1",
     StandIn("SPEC is any spec; cuda:1 needs a second GPU", f"blockgraph train specs/default.yaml --device cpu {SHORT}")),
    ("torchrun --nproc-per-node 4 -m compiler train specs/resnet50.yaml --dataset folder --set root=/data/imagenet "
     "--batch-size 1024 --workers 8 --amp bf16",
     StandIn("4 GPUs and ImageNet: 2 CPU processes, a ResNet-18 on a small image folder of 3 classes",
             "torchrun --nproc-per-node 2 -m compiler train specs/resnet18.yaml -D classes=3 --dataset folder "
             "--set root=imagefolder --batch-size 4 --workers 1 --amp bf16 --epochs 1")),
    ("torchrun --nnodes 2 --nproc-per-node 8 --node-rank R --rdzv-backend c10d --rdzv-endpoint HOST:29500 "
     "--rdzv-id myrun -m compiler train specs/resnet50.yaml --dataset folder --set root=/data/imagenet "
     "--batch-size 2048 --run-dir /shared/runs/resnet50",
     StandIn("2 machines with 8 GPUs: one machine, 2 processes, the same c10d rendezvous on localhost",
             "torchrun --nnodes 1 --nproc-per-node 2 --node-rank 0 --rdzv-backend c10d "
             "--rdzv-endpoint 127.0.0.1:{port} --rdzv-id myrun -m compiler train specs/default.yaml "
             f"--run-dir runs/multinode {SHORT}")),
    _short("blockgraph train specs/unet_small_shapes.yaml --epochs 2 --set train_size=256 --set val_size=64 "
           "--batch-size 32 --set optimizer=adamw --lr 0.003", "2 epochs of 256 64x64 masks"),
    _short("blockgraph train specs/yolov1_shapes.yaml --epochs 2 --set train_size=256 --set val_size=64 --batch-size 32 "
           "--set optimizer=adamw --run-dir runs/yolo", "2 epochs of 256 scenes"),
    _short("blockgraph train specs/fast_rcnn_shapes.yaml --epochs 2 --set train_size=256 --set val_size=64 "
           "--batch-size 32 --set optimizer=adamw --run-dir runs/frcnn", "2 epochs of 256 scenes"),
    _short("blockgraph train specs/yolov1_shapes.yaml --epochs 8 --set train_size=8000 --set optimizer=adamw "
           "--lr 0.002 --set schedule=onecycle", "the benchmark's run: 8 epochs of 8,000 scenes"),
    _short("blockgraph train specs/fast_rcnn_shapes.yaml --epochs 6 --set train_size=3000 --set optimizer=adamw "
           "--batch-size 32", "the benchmark's run: 6 epochs of 3,000 scenes"),
])


# -- the files the pages use ------------------------------------------------------------------

def _yaml_before(page: str, marker: str, after: bool = False) -> str:
    """The last ```yaml block of `page` before the first line containing `marker` (or, with
    `after`, the first block after it)."""
    lines = (ROOT / page).read_text().splitlines()
    end = next(i for i, line in enumerate(lines) if marker in line)
    opening = [i for i, line in enumerate(lines) if line.strip() == "```yaml"]
    start = min(i for i in opening if i > end) if after else max(i for i in opening if i < end)
    stop = next(i for i in range(start + 1, len(lines)) if lines[i].strip() == "```")
    return "\n".join(lines[start + 1:stop]) + "\n"


UNUSED = """\
blockgraph: 1
name: unused
inputs: {x: [3, 16, 16], y: [8]}
nodes:
  - {id: a, op: conv, in: x, out: 8}
  - {id: b, op: conv, in: x, out: 4}
outputs: [a]
"""
"""cli.md's and spec-language.md's unused.yaml: a node and an input nothing reads."""


def _my_yaml() -> str:
    """training.md's my.yaml: its `train:` example with the two mistakes the page reports, last
    (so they are at the lines the page shows)."""
    text = _yaml_before("docs/training.md", "| key | default | meaning |")
    head, train = text.split("\ntrain:\n")
    keys = [line for line in train.splitlines() if not line.lstrip().startswith(("lr:", "optimizer:"))]
    return "\n".join([head, "train:", *keys, "  learning_rate: 0.2", "  optimizer: adam"]) + "\n"


def _files(copy: Path) -> None:
    (copy / "tiny.yaml").write_text(_yaml_before("README.md", "Each node reads the previous node's output"))
    (copy / "broken.yaml").write_text(_yaml_before("docs/spec-language.md", "blockgraph validate broken.yaml"))
    (copy / "unused.yaml").write_text(UNUSED)
    (copy / "trillion.yaml").write_text(TRILLION)
    (copy / "my.yaml").write_text(_my_yaml())
    (copy / "recipes").mkdir()
    (copy / "recipes" / "fast.yaml").write_text("# a quick recipe: one short epoch\n"
                                                "train: {epochs: 1, train_size: 64, val_size: 32, batch_size: 32}\n")
    from PIL import Image

    for k, colour in enumerate(["red", "green", "blue"]):  # an ImageFolder: class folders of images
        folder = copy / "imagefolder" / f"class{k}"
        folder.mkdir(parents=True)
        for i in range(6):
            Image.new("RGB", (40 + i, 36), colour).save(folder / f"{i}.png")


def _copy_repo(dest: Path) -> Path:
    copy = dest / "repo"
    ignore = shutil.ignore_patterns(".git", ".venv", "runs", "__pycache__", ".hypothesis", ".pytest_cache")
    shutil.copytree(ROOT, copy, ignore=ignore, symlinks=True)
    (copy / ".venv").symlink_to(ROOT / ".venv")
    _files(copy)
    return copy


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory) -> Path:
    return _copy_repo(tmp_path_factory.mktemp("docs"))


# -- running ----------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("OMP_NUM_THREADS", "1")  # 2 cores: one thread per process is faster here
    env.pop("PYTHONPATH", None)
    return env


@dataclass
class Outcome:
    status: int
    output: str


def _serve(command: str, cwd: Path, port: int) -> Outcome:
    """Start a server, wait until its port answers, SIGTERM it: 0 when it served and stopped."""
    proc = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not _answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.communicate(timeout=10)[0] if proc.poll() is not None else ""
                return Outcome(99, f"never served on port {port}\n{out}")
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        try:
            out = proc.communicate(timeout=15)[0]
        except subprocess.TimeoutExpired:
            return Outcome(98, "still running 15 s after SIGTERM")
        if _answers(port):
            return Outcome(97, f"port {port} still answers after the command stopped")
        return Outcome(0, out)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _run(command: str, cwd: Path) -> Outcome:
    try:
        proc = subprocess.run(["bash", "-c", command], cwd=cwd, env=_env(), capture_output=True, text=True,
                              timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return Outcome(124, f"timed out after {TIMEOUT} s: too long for CI, give it a stand-in in STAND_INS")
    return Outcome(proc.returncode, proc.stdout + proc.stderr)


def _check(cmd: Command, cwd: Path) -> str | None:
    """None when the command does what its page says; else why not."""
    stand_in = STAND_INS.get(cmd.text)
    port = _free_port()
    run = stand_in.command.format(port=port) if stand_in else cmd.text
    outcome = _serve(run, cwd, port) if stand_in and stand_in.serves else _run(run, cwd)
    expected = cmd.expected_status()
    ok = (outcome.status == 0 if expected == "0" else outcome.status != 0 if expected == "non-zero"
          else outcome.status == int(expected))
    missing = [line for line in cmd.compared_lines() if line not in outcome.output]
    if ok and not missing:
        return None
    tail = "\n    ".join(outcome.output.strip().splitlines()[-12:])
    what = f"exit {outcome.status}, the page implies {expected}" if not ok else "output differs"
    lines = "".join(f"\n  documented, not printed: {line}" for line in missing)
    ran = f" (stand-in: {run})" if stand_in else ""
    return f"{cmd.where}: {cmd.text}{ran}: {what}{lines}\n    {tail}"


def _page_commands(page: str) -> list[Command]:
    return commands(ROOT / page, ROOT)


@pytest.mark.parametrize("page", PAGES)
def test_the_commands_of_a_page_run_as_written(page, repo_copy):
    failures = [f for f in (_check(cmd, repo_copy) for cmd in _page_commands(page)) if f]
    assert not failures, "\n".join(failures)


# -- the harness itself -----------------------------------------------------------------------

def test_the_pages_hold_the_commands_a_user_types():
    """Not vacuous: the README's set-up and CLI commands and the CLI page's transcripts are seen,
    with the exit statuses their pages state."""
    readme = [c.text for c in _page_commands("README.md")]
    assert readme[:2] == ["./dev start", "./dev test"]
    assert ".venv/bin/blockgraph train specs/default.yaml" in readme
    cli = {c.text: c for c in _page_commands("docs/cli.md")}
    assert cli["blockgraph frob"].expected_status() == "2"
    assert cli["blockgraph validate tiny.yaml unused.yaml broken.yaml"].expected_status() == "1"
    assert cli["blockgraph --plugin nosuch validate specs/default.yaml"].expected_status() == "non-zero"
    assert not any("[--var" in text for text in cli)  # synopses are not commands


def test_every_stand_in_replaces_a_documented_command():
    """A stand-in whose command left the docs would hide nothing: it must go too."""
    documented = {c.text for page in PAGES for c in _page_commands(page)}
    assert not set(STAND_INS) - documented, sorted(set(STAND_INS) - documented)


def test_a_wrong_status_or_a_missing_line_is_caught(tmp_path):
    good = Command("x.md", 1, "blockgraph validate specs/default.yaml",
                   ["specs/default.yaml: ok: 11 nodes; outputs: classifier [10]"])
    assert _check(good, ROOT) is None
    wrong_line = Command("x.md", 1, "blockgraph validate specs/default.yaml", ["specs/default.yaml: ok: 12 nodes"])
    assert "documented, not printed" in _check(wrong_line, ROOT)
    wrong_status = Command("x.md", 1, "blockgraph validate nosuch.yaml")
    assert "exit 1, the page implies 0" in _check(wrong_status, ROOT)
