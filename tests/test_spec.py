"""Spec loading: vars and overrides, defaults, ids, repeats, wiring defaults, located errors."""

from __future__ import annotations

import pytest

import compiler
from compiler import SpecError


def make(nodes: str, extra: str = "", inputs: str = "{x: [3, 32, 32]}") -> str:
    return f"blockgraph: 1\nname: t\ninputs: {inputs}\n{extra}nodes:\n{nodes}"


def errors_of(text: str, **kw) -> list[str]:
    with pytest.raises(SpecError) as info:
        spec = compiler.load(text, **kw)
        compiler.analyze(spec)
    return [str(e) for e in info.value.errors]


def test_vars_expressions_and_overrides():
    text = make("  - {id: c, op: conv, out: $width * 2, k: $k}\n  - {id: fc, op: linear, out: 'max($classes, 2)'}\n",
                "vars: {width: 16, k: 3, classes: 10}\n").replace("- {id: fc", "- {op: gap}\n  - {id: fc")
    spec = compiler.load(text)
    assert spec.node("c").block.out == 32 and spec.node("fc").block.out == 10
    spec = compiler.load(text, vars={"width": 8, "classes": 1})
    assert spec.node("c").block.out == 16 and spec.node("fc").block.out == 2
    assert spec.vars == {"width": 8, "k": 3, "classes": 1}


def test_vars_may_use_vars_and_keep_their_type():
    text = make("  - {op: conv, out: $wide, act: $act}\n", "vars: {base: 8, wide: $base * 4, act: relu}\n")
    block = compiler.load(text).nodes[0].block
    assert block.out == 32 and block.act.kind == "relu"


def test_var_loop_is_reported():
    (msg,) = errors_of(make("  - {op: conv, out: $a}\n", "vars: {a: $b + 1, b: $a * 2}\n"))[:1]
    assert "loop" in msg and "$a -> $b -> $a" in msg


def test_unknown_override_is_an_error():
    msgs = errors_of(make("  - {op: conv, out: 4}\n", "vars: {width: 4}\n"), vars={"widht": 3})
    assert any("override of unknown var 'widht'; did you mean 'width'?" in m for m in msgs)


def test_unquoted_comma_in_a_flow_map_gets_a_hint():
    (msg,) = errors_of(make("  - {op: conv, out: max($w, 2)}\n", "vars: {w: 4}\n"))
    assert "quote expressions that contain commas" in msg


def test_integral_division_is_an_integer_and_fractional_is_an_error():
    assert compiler.load(make("  - {op: conv, out: $w / 2}\n", "vars: {w: 64}\n")).nodes[0].block.out == 32
    (msg,) = errors_of(make("  - {op: conv, out: $w / 3}\n", "vars: {w: 64}\n"))
    assert msg == "<string>:6:21: nodes[0].out: '$w / 3' is 21.3333: expected an integer (// divides to a whole number)"


def test_defaults_apply_and_nodes_override_them():
    text = make("  - {id: a, op: conv, out: 8}\n  - {id: b, op: conv, out: 8, act: silu, k: 1}\n",
                "defaults:\n  conv: {k: 5, norm: batch, act: relu}\n")
    spec = compiler.load(text)
    a, b = spec.node("a").block, spec.node("b").block
    assert (a.k, a.norm.kind, a.act.kind) == (5, "batch", "relu")
    assert (b.k, b.norm.kind, b.act.kind) == (1, "batch", "silu")


def test_error_in_a_default_points_at_the_default():
    text = make("  - {id: a, op: conv, out: 8}\n", "defaults:\n  conv: {k: -3}\n")
    (msg,) = errors_of(text)
    assert msg.startswith("<string>:5:13: defaults.conv.k: expected a positive integer, got -3")


def test_generated_ids_are_readable_and_skip_taken_ones():
    spec = compiler.load(make("  - {op: conv, out: 4}\n  - {op: conv, out: 4}\n  - {id: conv2, op: act, kind: relu}\n"))
    assert [n.id for n in spec.nodes] == ["conv1", "conv3", "conv2"]


def test_repeat_unrolls_with_hierarchical_ids():
    spec = compiler.load(make("  - {id: body, op: conv, out: 4, repeat: 3}\n  - {op: gap}\n"))
    assert [n.id for n in spec.nodes] == ["body.0", "body.1", "body.2", "gap1"]
    assert [n.inputs for n in spec.nodes] == [["x"], ["body.0"], ["body.1"], ["body"]]
    assert spec.aliases == {"body": "body.2"}
    model = compiler.build(spec)
    assert "body.1.conv.weight" in model.state_dict()


def test_repeat_zero_passes_the_input_through():
    spec = compiler.load(make("  - {id: a, op: conv, out: 4}\n  - {id: skip, op: conv, out: 4, repeat: $n - 1}\n"
                              "  - {id: b, op: add, in: [a, skip]}\n", "vars: {n: 1}\n"))
    analysis = compiler.analyze(spec)
    assert analysis.graph.inputs["b"] == ["a", "a"]


def test_sequential_by_default_and_explicit_in():
    spec = compiler.load(make("  - {id: a, op: conv, out: 4}\n  - {id: b, op: conv, in: x, out: 4}\n"
                              "  - {id: c, op: concat, in: [a, b]}\n"))
    assert spec.node("a").inputs == ["x"] and spec.node("c").inputs == ["a", "b"]
    assert compiler.analyze(spec).graph.shapes["c"] == (8, 32, 32)


def test_outputs_default_to_the_last_node_group():
    spec = compiler.load(make("  - {id: a, op: conv, out: 4, repeat: 2}\n"))
    assert spec.outputs == ["a"] and compiler.analyze(spec).graph.outputs == ["a.1"]


def test_several_errors_are_reported_together():
    msgs = errors_of(make("  - {op: conv, out: -1}\n  - {op: linaer, out: 3}\n  - {op: conv, out: 4, kernal: 3}\n"))
    assert len(msgs) == 3
    assert "expected a positive integer, got -1" in msgs[0]
    assert "unknown op 'linaer'; did you mean 'linear'?" in msgs[1]
    assert "unknown key 'kernal' for op 'conv'" in msgs[2]


def test_unknown_nested_key_lists_the_nested_options():
    (msg,) = errors_of(make("  - {op: conv, out: 4, norm: {kind: group, grups: 2}}\n"))
    assert "unknown key 'grups'" in msg and "did you mean 'groups'?" in msg and msg.startswith("<string>:5:44: nodes[0].norm.grups: unknown key 'grups' in norm")


def test_top_level_typo_gets_a_suggestion():
    msgs = errors_of("blockgraph: 1\nname: t\ninputs: {x: [3]}\nnode: []\n")
    assert any("unknown key 'node' for a spec; did you mean 'nodes'?" in m for m in msgs)
    assert not any("missing required key 'nodes'" in m for m in msgs)  # the suggestion covers it


def test_load_reads_paths_and_text(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(make("  - {op: conv, out: 4}\n"))
    assert compiler.load(path).file == str(path)
    assert compiler.load(str(path)).nodes[0].block.out == 4
    assert compiler.load(path.read_text()).file == "<string>"


def test_missing_file_is_a_located_error(tmp_path):
    with pytest.raises(SpecError) as info:
        compiler.load(tmp_path / "nope.yaml")
    assert "cannot read file" in str(info.value)


def test_load_text_as_a_file_reports_against_it_and_extends_next_to_it(tmp_path):
    """An editor's buffer: YAML text that belongs to a path (the designer's case)."""
    (tmp_path / "base.yaml").write_text("blockgraph: 1\nname: base\ninputs: {x: [3, 8, 8]}\n"
                                        "nodes:\n  - {id: c, op: conv, out: 4}\n")
    text = "blockgraph: 1\nextends: base.yaml\nname: child\n"
    spec = compiler.load(text, file=tmp_path / "child.yaml")
    assert spec.name == "child" and spec.file == str(tmp_path / "child.yaml")
    with pytest.raises(compiler.SpecError) as info:
        compiler.load(text + "nodez: []\n", file=tmp_path / "child.yaml")
    assert str(info.value).startswith(f"{tmp_path / 'child.yaml'}:4:1:")
    with pytest.raises(compiler.SpecError, match="no such spec file 'base.yaml'"):
        compiler.load(text)  # plain text resolves extends in the working directory


# -- quoted numbers are text ------------------------------------------------------------------

def test_quoted_numbers_and_booleans_are_errors_with_the_fix():
    """Pydantic's lax mode would read these as 16, 5, 2, 0.001 and True; a quoted YAML value is
    text, so each is an error at its own column, all in one run (a wrong key beside them too)."""
    text = make('  - {op: conv, out: "16", k: [\'5\', 3], stride: "2", bias: "true", norm: {kind: batch, eps: "1e-3"},'
                ' kernal: 3}\n')
    msgs = errors_of(text)
    line = text.splitlines()[4]
    col = {key: line.index(key + ":") + len(key) + 3 for key in ("out", "stride", "bias", "eps")}
    assert set(msgs) == {
        f'<string>:5:{col["out"]}: nodes[0].out: expected an integer, got the text "16": write 16 without quotes',
        f'<string>:5:{line.index("[") + 2}: nodes[0].k[0]: expected an integer, got the text "5": write 5 without quotes',
        f'<string>:5:{col["stride"]}: nodes[0].stride: expected an integer, got the text "2": write 2 without quotes',
        f'<string>:5:{col["bias"]}: nodes[0].bias: expected true or false, got the text "true": write true without quotes',
        f'<string>:5:{col["eps"]}: nodes[0].norm.eps: expected a number, got the text "1e-3": write 1e-3 without quotes',
        f"<string>:5:{line.index('kernal') + 1}: nodes[0].kernal: unknown key 'kernal' for op 'conv'; did you mean 'k'? "
        "(allowed: out, k, stride, pad, dilation, groups, bias, norm, act, order)",
    }


def test_quoted_values_in_node_keys_inputs_scaling_init_and_block_parameters():
    text = ("blockgraph: 1\nname: t\ninputs: {x: [3, '32', 32]}\n"
            "blocks:\n  unit:\n    params: {out: int}\n    nodes:\n      - {op: conv, out: $out}\n"
            "nodes:\n  - {op: conv, out: 4, repeat: '2', init: {weight: {kind: normal, std: '0.1'}}}\n"
            "  - {op: unit, out: '8', when: 'true'}\n")
    msgs = errors_of(text)
    assert msgs == [
        "<string>:3:17: inputs.x[1]: expected a positive integer size, got '32': write 32 without quotes",
        "<string>:10:32: nodes[0].repeat: expected a whole number of copies from 0 to 10,000, got '2': "
        "write 2 without quotes",
        "<string>:10:72: nodes[0].init.weight.std: expected a number, got the text \"0.1\": write 0.1 without quotes",
        "<string>:11:32: nodes[1].when: `when` needs true or false, got 'true': write true without quotes",
    ]
    msgs = errors_of(text.replace("'2'", "2").replace("'0.1'", "0.1").replace(", when: 'true'", ""))
    assert msgs[1:] == ["<string>:11:21: nodes[1].out: parameter 'out' of block 'unit' expects int, got '8': "
                    "write 8 without quotes"]
    (msg,) = errors_of(make("  - {op: conv, out: 4}\n", "scaling: {width: '2'}\n"))
    assert msg == '<string>:4:18: scaling.width: expected a number, got the text "2": write 2 without quotes'


def test_quoted_var_values_and_what_stays_text():
    (msg,) = errors_of(make("  - {op: conv, out: $w}\n", "vars: {w: '16'}\n"))
    assert msg == "<string>:6:21: nodes[0].out: '$w' is '16': expected an integer; write that value without quotes (16, not \"16\")"
    # expressions, text-valued options and text vars passed to text fields are untouched
    spec = compiler.load(make('  - {op: conv, out: "max($w, 2) * 2", act: "relu", norm: $n}\n',
                              "vars: {w: 8, n: 'batch'}\n"))
    block = spec.nodes[0].block
    assert (block.out, block.act.kind, block.norm.kind) == (16, "relu", "batch")
    # `yes` is text in YAML 1.2: refused, with the two words that are booleans
    (msg,) = errors_of(make("  - {op: conv, out: 4, bias: yes}\n"))
    assert msg.endswith("nodes[0].bias: expected true or false, got 'yes' (YAML 1.2 reads yes/no/on/off as text): "
                        "write true or false")


# -- nodes the user wrote inside a composite --------------------------------------------------

BODY = """blockgraph: 1
name: t
inputs: {x: [8, 16, 16]}
nodes:
  - op: residual
    body:
      - {op: conv, out: 8}
      - {op: conv, out: 8, k: 40, pad: 0}
  - {op: gap}
"""


def test_a_residual_body_is_reported_at_its_own_lines():
    (msg,) = errors_of(BODY)
    assert msg.startswith("<string>:8:9: nodes[0].body[1]: node 'residual1.body_out' (conv): conv kernel 40x40"), msg
    (msg,) = errors_of(BODY.replace("k: 40, pad: 0", "k: 3, strde: 2"))
    assert msg.startswith("<string>:8:34: nodes[0].body[1].strde: unknown key 'strde' for op 'conv'; "
                          "did you mean 'stride'?"), msg


def test_marks_do_not_leak_into_blocks_or_groups():
    """The location marks travel with the body's node maps only while the spec expands: a
    composite's arguments (what diffs compare) and the built blocks hold none, so two specs
    that differ only in layout have no differences."""
    from compiler.diff import diff

    good = BODY.replace("k: 40, pad: 0", "k: 3")
    moved = good.replace("nodes:\n", "nodes:\n\n\n")
    a, b = compiler.load(good), compiler.load(moved)
    residual = a.groups["residual1"].block
    assert residual.body == [{"op": "conv", "out": 8}, {"op": "conv", "out": 8, "k": 3}]
    assert b.nodes[0].loc.line == a.nodes[0].loc.line + 2
    assert diff(compiler.analyze(a), compiler.analyze(b)).changes == []
