"""Fuzzing: random YAML documents, random text and bytes, and mutated zoo specs never crash
`load`, `analyze` or `build` (meta device): each succeeds or raises a SpecError whose problems
all have a FILE:LINE:COL location. Strategies and the property are in fuzz_strategies.py;
benchmarks/fuzz.py runs the same property for a long campaign.

The examples are derandomized (the same ones every run) and no example database is written,
so CI is reproducible; 3,000 examples in all (about 30 s of CPU)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from fuzz_strategies import SPECS, check, check_deeper, raw_inputs, yaml_documents, zoo_mutations

CI = settings(deadline=None, derandomize=True, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much])


@settings(CI, max_examples=800)
@given(yaml_documents())
def test_random_yaml_documents(text):
    check(text)


@settings(CI, max_examples=1000)
@given(raw_inputs())
def test_random_text_and_bytes(source):
    check(source)


@settings(CI, max_examples=900)
@given(zoo_mutations())
def test_mutated_zoo_specs(case):
    name, text = case
    check(text, file=SPECS / name)


@settings(CI, max_examples=300)
@given(zoo_mutations())
def test_mutated_zoo_specs_summarise_and_build_on_the_cpu(case):
    name, text = case
    check_deeper(text, file=SPECS / name)


def test_the_property_sees_both_outcomes():
    """The harness is not vacuous: an intact zoo spec passes, a broken one is a located error."""
    text = (SPECS / "resnet20_cifar.yaml").read_text()
    assert check(text, file=SPECS / "resnet20_cifar.yaml") == "ok"
    assert check(text.replace("out: 16", "out: -16", 1), file=SPECS / "resnet20_cifar.yaml") == "error"


# -- what fuzzing found -----------------------------------------------------------------------

def test_inputs_named_like_python_keywords_or_globals_build_and_run():
    """An input named `in` made forward() a SyntaxError (an internal error); one named `torch`
    shadowed torch in the generated code. The forward() argument gets a `_` instead."""
    import torch

    import compiler

    text = """\
blockgraph: 1
name: names
inputs: {in: [2, 4, 4], in_: [2, 4, 4], operator: [2, 4, 4], self: [2, 4, 4], torch: [2, 4, 4]}
nodes:
  - {id: s, op: add, in: [in, in_, operator, self, torch]}
  - {id: g, op: gap}
"""
    model = compiler.build(text)
    args = [n.target for n in model.graph.nodes if n.op == "placeholder"]
    assert args == ["in__", "in_", "operator_", "self_", "torch_"]
    x = [torch.full((1, 2, 4, 4), float(i)) for i in range(1, 6)]
    assert torch.equal(model(*x), torch.full((1, 2), 15.0))  # gap(1 + 2 + 3 + 4 + 5)



def test_a_weight_beyond_what_pytorch_can_describe_is_a_located_error_on_the_meta_device():
    """out: 4.7e16 on a 3x3 conv over 64 channels: 2.7e19 float32 values, past 2**63 bytes.
    Analysis counts it; the meta build raised RuntimeError (storage size overflow)."""
    import pytest

    import compiler
    from compiler import SpecError

    text = """\
blockgraph: 1
name: enormous
inputs: {image: [64, 8, 8]}
nodes:
  - {op: conv, out: 4.7477898586310024e+16}
  - {op: gap}
"""
    spec = compiler.load(text)
    assert compiler.analyze(spec).params == 47477898586310024 * 64 * 9 + 47477898586310024
    with pytest.raises(SpecError) as info:
        compiler.build(spec, device="meta")
    problem = info.value.first
    assert (problem.loc.line, problem.loc.col) == (5, 5)
    assert "node 'conv1' (conv) cannot be built: Storage size calculation overflowed" in problem.message


def test_a_size_past_2_63_is_a_located_error_on_the_meta_device():
    """An input width of 2**63 made torch.empty fail to unpack the size (TypeError)."""
    import pytest

    import compiler
    from compiler import SpecError

    text = """\
blockgraph: 1
name: wide
inputs: {image: [3, 4, 9223372036854775808]}
nodes:
  - {op: conv, out: 4}
  - {op: flatten}
  - {op: linear, out: 2}
"""
    with pytest.raises(SpecError) as info:
        compiler.build(text, device="meta")
    problem = info.value.first
    assert (problem.loc.line, problem.loc.col) == (7, 5)  # the linear layer, whose weight has 2**65 columns
    assert "node 'linear1' (linear) cannot be built" in problem.message and "Overflow" in problem.message

