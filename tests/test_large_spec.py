"""The benchmark's generated 1,000-node spec is valid and analyses to hand-computed numbers.

Correctness only: timing belongs to benchmarks/large_spec.py, not to the test suite.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import pytest
import torch

import compiler

ROOT = Path(__file__).resolve().parents[1]


def _benchmark_module():
    """benchmarks/ is not a package: load the generator from its file."""
    path = ROOT / "benchmarks" / "large_spec.py"
    module_spec = importlib.util.spec_from_file_location("blockgraph_bench_large_spec", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


bench = _benchmark_module()


@pytest.fixture(scope="module")
def analysis():
    return compiler.analyze(compiler.load(bench.make_spec(1000)))


def test_node_count_and_ops(analysis):
    spec = analysis.spec
    assert len(spec.nodes) == 1000
    assert len(analysis.nodes) == 1000
    # 1000 = 2 stem copies + 2 transitions + gap + head + 165 six-node units + 4 padding acts
    ops = Counter(n.op for n in spec.nodes)
    assert ops == {"conv": 2 + 2 + 165 * 4, "add": 165, "concat": 165, "act": 4, "gap": 1, "linear": 1}
    assert spec.vars == {"base": 8, "w1": 16, "w2": 24, "w3": 32, "classes": 10}


def test_static_shapes_are_hand_computed(analysis):
    shapes = analysis.graph.shapes
    assert analysis.graph.outputs == ["head"]
    assert shapes["head"] == (10,)
    assert shapes["pool"] == (32,)
    assert shapes["image"] == (3, 32, 32)
    assert shapes["stem.1"] == (16, 32, 32)
    assert shapes["down1"] == (24, 16, 16)
    assert shapes["down2"] == (32, 8, 8)
    # 165 units over 3 stages: 55 each; a unit keeps its stage's width and size
    for stage, (width, size) in enumerate([(16, 32), (24, 16), (32, 8)], start=1):
        for u in (0, 54):
            p = f"s{stage}u{u}"
            assert shapes[f"{p}_sum"] == (width, size, size)
            assert shapes[f"{p}_c"] == (width // 2, size, size)
            assert shapes[f"{p}_d"] == (width - width // 2, size, size)
            assert shapes[f"{p}_cat"] == (width, size, size)
        assert f"s{stage}u55" not in shapes
    assert shapes["pad3"] == (32, 8, 8)
    assert bench.expected_output_shape() == shapes["head"]
    assert bench.expected_final_map() == shapes["pad3"]


def _conv_bn(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + 2 * cout  # no conv bias before batch norm; gamma and beta


def test_parameters_are_hand_computed(analysis):
    expected = _conv_bn(3, 16, 3) + _conv_bn(16, 16, 3)
    for stage, width in enumerate((16, 24, 32)):
        if stage:
            expected += _conv_bn((16, 24, 32)[stage - 1], width, 3)
        half = width // 2
        unit = 2 * _conv_bn(width, width, 3) + _conv_bn(width, half, 1) + _conv_bn(width, width - half, 3)
        expected += 55 * unit
    expected += 32 * 10 + 10
    assert analysis.params == expected


def test_meta_build_matches_analysis(analysis):
    model = compiler.build(analysis.spec, device="meta")
    assert sum(p.numel() for p in model.parameters()) == analysis.params
    assert all(p.device.type == "meta" for p in model.parameters())


def test_small_generated_spec_runs():
    spec = compiler.load(bench.make_spec(40))
    assert len(spec.nodes) == 40
    model = compiler.build(spec, seed=0).eval()
    with torch.inference_mode():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_make_spec_refuses_too_few_nodes():
    with pytest.raises(ValueError):
        bench.make_spec(5)
