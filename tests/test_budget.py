"""The memory budget (compiler.budget): a spec whose weights need more than the budget is
refused before anything is allocated, quickly, with the estimate and how to raise the budget;
the meta device is never refused, and a trillion-parameter spec still validates and
summarises at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import compiler
from compiler import budget
from compiler.budget import BudgetError, parse_size
from compiler.formatting import human_bytes
from compiler.cli import main

ROOT = Path(__file__).resolve().parents[1]
RESNET20 = ROOT / "specs" / "resnet20_cifar.yaml"
# resnet20_cifar: 272,474 parameters + 1,568 batch-norm running statistics (num_batches_tracked
# is an integer and not counted), each a 4-byte float32 as built
RESNET20_BYTES = (272_474 + 1_568) * 4

TRILLION = """\
blockgraph: 1
name: trillion
inputs:
  x: [1000000]
nodes:
  - {id: fc1, op: linear, out: 1000000}
  - {id: fc2, op: linear, out: 10}
"""
# fc1: 10^6 x 10^6 weights + 10^6 biases; fc2: 10^6 x 10 + 10
TRILLION_PARAMS = 10**12 + 10**6 + 10**7 + 10


@pytest.fixture
def trillion(tmp_path) -> Path:
    path = tmp_path / "trillion.yaml"
    path.write_text(TRILLION)
    compiler.build(compiler.load(RESNET20), device="meta")  # imports done: time the work, not imports
    return path


@pytest.fixture(autouse=True)
def _no_budget_from_the_environment(monkeypatch):
    monkeypatch.delenv(budget.ENV, raising=False)


def test_a_trillion_parameter_spec_validates_and_summarises_at_once(trillion, capsys):
    start = time.perf_counter()
    spec = compiler.load(trillion)
    analysis = compiler.analyze(spec)
    assert main(["summary", str(trillion)]) == 0
    elapsed = time.perf_counter() - start
    assert analysis.params == TRILLION_PARAMS
    assert f"parameters: {TRILLION_PARAMS:,} trainable" in capsys.readouterr().out
    assert elapsed < 1.0, f"load + analyze + summary took {elapsed:.2f} s"


def test_building_a_trillion_parameters_is_refused_at_once_with_the_estimate(trillion):
    start = time.perf_counter()
    with pytest.raises(BudgetError) as info:
        compiler.build(trillion)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"the refusal took {elapsed:.2f} s"
    assert isinstance(info.value, compiler.SpecError)  # the CLI and the UI print it located
    problem = info.value.first
    assert (problem.loc.file, problem.loc.line, problem.loc.col) == (str(trillion), 6, 5)  # fc1, the largest
    estimate = TRILLION_PARAMS * 4 / 2**40
    assert f"needs about {estimate:.2f} TiB" in problem.message  # 3.64 TiB
    assert f"{TRILLION_PARAMS:,} parameters" in problem.message
    assert "more than the memory budget of" in problem.message and "half of the" in problem.message
    assert "max_memory=" in problem.message and "--max-memory" in problem.message
    assert budget.ENV in problem.message


def test_the_meta_device_is_never_refused(trillion):
    model = compiler.build(trillion, device="meta", max_memory=1)
    assert sum(p.numel() for p in model.parameters()) == TRILLION_PARAMS


def test_a_small_spec_builds_under_the_default_budget():
    limit, how = budget.budget(torch.device("cpu"))
    assert limit is not None and limit > RESNET20_BYTES and how.startswith("half of the")
    model = compiler.build(RESNET20)
    assert sum(p.numel() for p in model.parameters()) == 272_474


def test_the_estimate_is_what_the_build_allocates():
    analysis = compiler.analyze(compiler.load(RESNET20))
    model = compiler.build(RESNET20)
    allocated = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()]
                    if t.dtype.is_floating_point)
    assert budget.estimate_build(analysis) == allocated == RESNET20_BYTES
    assert budget.estimate_build(analysis, torch.float64) == RESNET20_BYTES * 3  # float32, then a float64 copy


def test_a_small_budget_refuses_and_raising_it_lets_the_spec_through():
    with pytest.raises(BudgetError, match=r"needs about 1\.05 MiB .*more than the memory budget of 1\.00 MiB "
                                          r"\(max_memory='1M'\)"):
        compiler.build(RESNET20, max_memory="1M")
    with pytest.raises(BudgetError):
        compiler.build(RESNET20, max_memory=RESNET20_BYTES - 1)
    assert compiler.build(RESNET20, max_memory=RESNET20_BYTES) is not None
    assert compiler.build(RESNET20, max_memory="2M") is not None


def test_the_environment_sets_the_budget_and_max_memory_overrides_it(monkeypatch):
    monkeypatch.setenv(budget.ENV, "1M")
    with pytest.raises(BudgetError, match="BLOCKGRAPH_MAX_MEMORY=1M"):
        compiler.build(RESNET20)
    assert compiler.build(RESNET20, max_memory="2M") is not None
    monkeypatch.setenv(budget.ENV, "lots")
    with pytest.raises(ValueError, match="BLOCKGRAPH_MAX_MEMORY: expected a size"):
        compiler.build(RESNET20)


def test_the_default_budget_is_half_the_available_memory(monkeypatch):
    monkeypatch.setattr(budget, "available", lambda device: (3 * RESNET20_BYTES // 2, "test memory"))
    limit, how = budget.budget(torch.device("cpu"))
    assert limit == 3 * RESNET20_BYTES // 4 and how == f"half of the {human_bytes(3 * RESNET20_BYTES // 2)} test memory"
    with pytest.raises(BudgetError, match="half of the"):
        compiler.build(RESNET20)
    monkeypatch.setattr(budget, "available", lambda device: (None, ""))
    assert budget.budget(torch.device("cpu"))[0] is None  # unknown: not checked
    assert compiler.build(RESNET20) is not None


def test_available_memory_of_the_cpu_is_plausible():
    free, source = budget.available(torch.device("cpu"))
    assert free is not None and 2**20 < free < 2**50 and source


@pytest.mark.parametrize("text,expected", [
    ("8G", 8 * 2**30), ("8GB", 8 * 2**30), ("8 GiB", 8 * 2**30), ("512M", 512 * 2**20), ("512mib", 512 * 2**20),
    ("1.5T", int(1.5 * 2**40)), ("2e9", 2_000_000_000), ("100K", 102_400), ("4096", 4096), (1000, 1000),
    (2.5e9, 2_500_000_000),
])
def test_sizes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "1X", "-1", "0", 0, -5, float("nan"), float("inf"), True, "G", None])
def test_bad_sizes(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_cli_build_refuses_with_a_located_message_and_max_memory_raises_the_budget(capsys):
    assert main(["build", str(RESNET20), "--max-memory", "1M"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{RESNET20}:18:5: nodes[3]: building resnet20_cifar on cpu needs about 1.05 MiB")
    assert budget.ENV not in os.environ  # the option does not leak out of main()
    assert main(["build", str(RESNET20), "--max-memory", "2M"]) == 0
    assert "built Resnet20Cifar with 272,474 parameters" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["build", str(RESNET20), "--max-memory", "plenty"])
    assert info.value.code == 2
    assert "--max-memory: expected a size" in capsys.readouterr().err


def test_cli_refuses_a_bad_environment_value(monkeypatch, capsys):
    monkeypatch.setenv(budget.ENV, "-1G")
    assert main(["build", str(RESNET20)]) == 2
    assert "blockgraph: error: BLOCKGRAPH_MAX_MEMORY: expected a size" in capsys.readouterr().err


def test_the_real_command_refuses_the_trillion_spec_without_a_traceback(trillion):
    proc = subprocess.run([sys.executable, "-m", "compiler", "build", str(trillion)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"{trillion}:6:5: nodes[0]: building trillion on cpu needs about 3.64 TiB")
    assert "Traceback" not in proc.stderr


def test_training_is_refused_beyond_max_memory(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = main(["train", str(RESNET20), "--max-memory", "8M", "--epochs", "1", "--batch-size", "16",
                 "--run-dir", str(run_dir), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "resnet20_cifar needs about" in err and "to train at batch 16" in err
    assert "more than the budget (BLOCKGRAPH_MAX_MEMORY=8M, or --max-memory) = 8.00 MiB" in err
    assert not (run_dir / "state.pt").exists()


def test_on_a_cuda_device_the_default_is_half_its_free_memory(trillion, monkeypatch):
    """Checked before CUDA is touched, so this runs without a GPU (mem_get_info stubbed)."""
    asked = []

    def mem_get_info(device):
        asked.append(device)
        return 80 * 2**30, 141 * 2**30

    monkeypatch.setattr(torch.cuda, "mem_get_info", mem_get_info)
    limit, how = budget.budget(torch.device("cuda", 0))
    assert limit == 40 * 2**30 and how == "half of the 80.00 GiB free memory of cuda:0"
    with pytest.raises(BudgetError, match=r"building trillion on cuda:0 needs about 3\.64 TiB .*"
                                          r"more than the memory budget of 40\.00 GiB \(half of the 80\.00 GiB free"):
        compiler.build(trillion, device="cuda:0")
    assert asked == [torch.device("cuda", 0)] * 2
