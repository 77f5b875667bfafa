"""A spec that passes the check always runs: whenever `compiler.analyze` accepts a drawn spec,
`compiler.build` on the CPU succeeds, a forward pass runs in train mode (with its backward) and
in eval mode, every output has its static shape and the module holds the parameters and buffers
the analysis counts; whenever the check refuses, the error is a located SpecError. The specs are
drawn from the op registry (tests/spec_strategies.py says what is and is not generated);
benchmarks/fuzz.py --property N runs the same property for a long campaign.

Derandomized (the same examples every run), no example database: 39 x 30 specs that start
with a given op (so every op is covered however the draws fall) and 900 free ones, 2,070 in
all, about a minute of CPU. The regression tests at the end are the bugs the property found."""

from __future__ import annotations

import collections

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings

import compiler
from compiler import SpecError
from spec_strategies import OPS, check_runs, specs

CI = settings(deadline=None, derandomize=True, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much])
FIRST = OPS + ["ub"]  # every built-in op, and a user block


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The tensors are tiny: one thread runs them several times faster than a pool of threads
    contending for the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _run(strategy, examples: int) -> collections.Counter:
    """The property on `examples` drawn specs; the outcomes counted ("ok", "error")."""
    outcomes: collections.Counter = collections.Counter()

    @settings(CI, max_examples=examples)
    @given(strategy)
    def run(text):
        outcome = check_runs(text)
        outcomes[outcome] += 1
        if outcome == "ok":
            outcomes[yaml.safe_load(text)["nodes"][0]["op"]] += 1  # which op the accepted spec starts with

    run()
    return outcomes


@pytest.mark.parametrize("first", FIRST)
def test_a_spec_starting_with_each_op_that_passes_the_check_runs(first):
    outcomes = _run(specs(first=first), 30)
    assert outcomes[first] >= 10, f"only {outcomes[first]} of 30 specs starting with {first} passed the check"


def test_a_drawn_spec_that_passes_the_check_runs():
    outcomes = _run(specs(), 900)
    assert outcomes["ok"] >= 600 and outcomes["error"] >= 50, outcomes  # both outcomes, mostly runs


def test_the_property_fails_when_the_module_disagrees_with_the_check(monkeypatch):
    """check_runs catches a module whose output differs from the static shape: here a flatten
    whose rule claims one value less than the module gives."""
    from compiler.blocks.flatten import Flatten

    text = "blockgraph: 1\nname: t\ninputs: {x: [2, 3]}\nnodes:\n  - {op: flatten}\n"
    assert check_runs(text) == "ok"
    monkeypatch.setattr(Flatten, "out_shape", lambda self, in_shapes: (5,))
    with pytest.raises(AssertionError, match=r"output 'flatten1' is \(2, 6\), static \(2, 5\)"):
        check_runs(text)


# -- what the property found ----------------------------------------------------------------------

def _spec(nodes: str, inputs: str) -> str:
    return f"blockgraph: 1\nname: t\ninputs: {inputs}\nnodes:\n{nodes}"


def test_layer_norm_on_a_rank_2_input_runs_as_checked():
    """Issue 18's case: `{op: norm, kind: layer}` on [16, 32] passed validate, summary and
    build, built LayerNorm((16,)) and the forward raised (it normalised the last axis, of 32).
    A rank-2 input is a sequence [T, F] (issue 20): layer norm normalises each of the 16 steps
    over its 32 features, with a per-feature scale and shift, and the count says 2 * 32."""
    text = _spec("  - {op: norm, kind: layer}\n", "{x: [16, 32]}")
    assert check_runs(text) == "ok"
    model = compiler.build(text, seed=0).eval()
    x = torch.randn(3, 16, 32, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(model(x), torch.nn.functional.layer_norm(x, (32,)))
    assert compiler.analyze(compiler.load(text)).params == 2 * 32


def test_instance_norm_on_a_one_pixel_map_is_a_located_error():
    """Instance norm on a [C, 1, 1] map passed the check, and PyTorch refuses it at run time,
    in train and eval mode ("Expected more than 1 spatial element"): the check refuses it now,
    as its own node and fused after a conv."""
    for nodes, line in (("  - {op: gap, keepdim: true}\n  - {op: norm, kind: instance}\n", 6),
                        ("  - {op: conv, out: 4, k: 2, stride: 2, norm: instance, order: conv-act-norm}\n", 5)):
        with pytest.raises(SpecError) as info:
            compiler.analyze(compiler.load(_spec(nodes, "{x: [2, 3, 3]}")))
        problem = info.value.first
        assert problem.loc.line == line
        assert "instance norm needs more than one pixel per channel" in problem.message
        assert "[4, 1, 1]" in problem.message or "[2, 1, 1]" in problem.message


def test_token_ids_reach_an_embedding_and_a_float_input_to_one_is_a_located_error():
    """The property feeds an int64 input random ids below the vocab of the embedding that reads
    it (a float batch would fail in nn.Embedding), and a spec giving an embedding values is
    refused by the check, not by PyTorch."""
    text = ("blockgraph: 1\nname: t\ninputs: {ids: {shape: [5], dtype: int64}}\nnodes:\n"
            "  - {op: embedding, vocab: 2, dim: 3}\n  - {op: gru, hidden: 4, returns: last}\n")
    assert check_runs(text) == "ok"
    assert check_runs(text.replace("{shape: [5], dtype: int64}", "[5]")) == "error"
