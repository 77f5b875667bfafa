"""Every registered block, on every one of its examples, through the same checks (like Keras'
`run_layer_test` and timm's test_models): arguments round-trip through YAML, the static shape
equals the real one (times R rows per image after a region op, fed valid boxes), the fx module equals the block's own module, MACs equal PyTorch's own
FLOP counter / 2, parameters equal the built module's, and a backward pass works."""

from __future__ import annotations

import warnings

import pytest
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

import compiler
from compiler.blocks import REGISTRY
from compiler.blocks.registry import is_built_in
from compiler.detection.proposals import random_boxes
from compiler.sample_inputs import sample_batch, sample_inputs
from support import declared_inputs

BUILT_IN = {op: cls for op, cls in REGISTRY.items() if is_built_in(cls)}
CASES = [pytest.param(op, args, shapes, id=f"{op}-{i}")
         for op, cls in sorted(BUILT_IN.items()) for i, (args, shapes) in enumerate(cls.examples)]


def spec_text(op: str, args: dict, shapes: list) -> str:
    """A one-node spec; an op that reads token ids gets int64 inputs, as a user declares them."""
    inputs = declared_inputs(op, shapes)
    node = {"id": "node", "op": op, "in": list(inputs), **args}
    return yaml.safe_dump({"blockgraph": 1, "name": f"harness_{op}", "inputs": inputs, "nodes": [node]},
                          sort_keys=False)


def test_every_block_has_examples_and_docstrings():
    for op, cls in BUILT_IN.items():
        assert cls.examples, f"{op} has no examples"
        assert cls.__module__ and (__import__(cls.__module__, fromlist=["x"]).__doc__ or "").strip(), op
        for name, field in cls.model_fields.items():
            if name != "op":
                assert field.description, f"{op}.{name} has no docstring"


@pytest.mark.parametrize("op, args, shapes", CASES)
def test_yaml_round_trip(op, args, shapes):
    def block_of(spec):
        return spec.groups["node"].block if "node" in spec.groups else spec.node("node").block

    block = block_of(compiler.load(spec_text(op, args, shapes)))
    assert block_of(compiler.load(spec_text(op, block.args(), shapes))) == block


@pytest.mark.parametrize("op, args, shapes", CASES)
def test_shape_cost_and_gradients(op, args, shapes):
    torch.manual_seed(0)
    spec = compiler.load(spec_text(op, args, shapes))
    analysis = compiler.analyze(spec)
    module = compiler.build(spec, seed=0)
    boxes_at = getattr(REGISTRY[op], "regions_input", None)
    samples = sample_inputs(spec)  # an int64 input gets ids below the op's bound (vocab)
    xs = [random_boxes(2, s[0], shapes[0], generator=torch.Generator().manual_seed(i)) if i == boxes_at
          else torch.randn(2, *s, requires_grad=True) if samples[i].id_bound is None
          else sample_batch([samples[i]], 2, seed=i)[0] for i, s in enumerate(shapes)]

    out = module(*xs)
    expected = analysis.graph.shapes[analysis.graph.outputs[0]]
    regions = analysis.graph.regions[analysis.graph.outputs[0]]  # R boxes per image after a region op
    assert tuple(out.shape) == (2 * regions, *expected)

    # parameters: the static count (closed form or meta build) is the built module's
    assert analysis.params == sum(p.numel() for p in module.parameters())
    assert analysis.buffers == sum(b.numel() for b in module.buffers() if b.dtype.is_floating_point)

    # MACs: PyTorch's FLOP counter counts 2 per multiply-accumulate in conv / matmul
    # (with oneDNN off: its fused CPU LSTM kernel is one op the counter has no formula for,
    # where PyTorch's own CPU path runs the gate matmuls it counts)
    module.eval()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")  # said on every switch
        with torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as counter:
            module(*[x[:1].detach() for x in xs])
    assert analysis.macs == counter.get_total_flops() // 2

    # the generated fx code computes what the block's own module computes
    module.train()
    own = module.get_submodule("node") if hasattr(module, "node") and "node" not in spec.groups else None
    shape_only = (*getattr(REGISTRY[op], "shape_only_inputs", ()), boxes_at)  # boxes get no gradient
    if own is not None:
        module.eval()
        torch.testing.assert_close(module(*xs), own(*[x for i, x in enumerate(xs) if i not in shape_only]))
        module.train()

    # gradients flow back to every input
    out = module(*xs)
    out.float().pow(2).sum().backward()
    if op not in ("identity",):
        for i, x in enumerate(xs):
            if i in shape_only or not x.is_floating_point():  # token ids get no gradient either
                continue
            assert x.grad is not None and torch.isfinite(x.grad).all()
