"""torchrun with 2 processes (Gloo on the CPU, DistributedDataParallel): one metrics file, one
checkpoint, and the same training as one process with the same global batch and seed.

With the same global batch the two processes see, step by step, the same images as the one
process (each takes every other index of the same DistributedSampler order), so the runs
differ only through batch norm (statistics over 16 images per process instead of 32) and the
dropout masks (each process has its own random stream). Measured on this tiny spec: final
train losses within 1% of each other; the test allows 5%."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

import compiler
from train_support import ROOT, TINY, env, free_port

ARGS = ["--epochs", "2", "--batch-size", "32", "--set", "train_size=512", "--set", "val_size=128", "--seed", "3"]


def test_two_processes_train_like_one(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    ddp_dir, single_dir = tmp_path / "ddp", tmp_path / "single"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
               str(free_port()), "-m", "compiler", "train", str(spec), *ARGS, "--run-dir", str(ddp_dir)]
    proc = subprocess.Popen(command, cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:  # the single-process run, here, meanwhile
        single = compiler.train(spec, run_dir=str(single_dir), epochs=2, batch_size=32, train_size=512,
                                val_size=128, seed=3, quiet=True)
        out, err = proc.communicate(timeout=150)
    finally:
        proc.kill()
    assert proc.returncode == 0, err

    # rank 0 alone printed, wrote metrics and one checkpoint
    assert out.count(f"run: {ddp_dir}") == 1 and out.count("epoch 2/2") == 1
    assert "(2 processes x 16)" in out
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("metrics.jsonl")) == \
        [ddp_dir.relative_to(tmp_path) / "metrics.jsonl", single_dir.relative_to(tmp_path) / "metrics.jsonl"]
    assert {p.name for p in ddp_dir.iterdir()} == {"metrics.jsonl", "metrics.csv", "curves.png", "model.safetensors",
                                                   "state.pt", "spec.yaml", "config.json"}
    rows = [json.loads(line) for line in (ddp_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    state = torch.load(ddp_dir / "state.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng"]) == 2 and state["epoch"] == 2
    assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])  # per-rank streams
    assert state["global_step"] == single.history[-1]["step"] == 2 * 512 // 32

    # the same training: losses close, accuracy counted over the whole val set
    ddp_loss, one_loss = rows[-1]["train_loss"], single.history[-1]["train_loss"]
    assert abs(ddp_loss - one_loss) / one_loss < 0.05, (ddp_loss, one_loss)
    assert abs(rows[-1]["val_loss"] - single.history[-1]["val_loss"]) / single.history[-1]["val_loss"] < 0.05
    assert (rows[-1]["val_top1"] * 128).is_integer()
