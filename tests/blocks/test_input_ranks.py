"""Every built-in op declares the input ranks it takes in one class attribute, `ranks`
(1 = [F], 2 = [C, L], 3 = [C, H, W]; None for any rank). That attribute is what the shape rule
checks (`Block.check_rank`), what docs/blocks.md's generated **Input** line says, and what the
registry harness runs: every declared rank has an example, so its static shape is compared with
a real forward pass, and every other rank is a located error naming the op, never a module
that fails at run time (issue 18: layer norm on [C, L] passed the check and failed to run)."""

from __future__ import annotations

import pytest
import yaml

import compiler
from compiler import SpecError
from compiler.blocks import REGISTRY, Block, Composite
from compiler.blocks.registry import is_built_in
from support import declared_inputs

BUILT_IN = {op: cls for op, cls in sorted(REGISTRY.items()) if is_built_in(cls)}
RANKED = [op for op, cls in BUILT_IN.items() if cls.ranks is not None]
SHAPES = {1: (4,), 2: (4, 6), 3: (4, 6, 6), 4: (4, 6, 6, 6)}


def _spec(op: str, args: dict, shapes: list) -> str:
    inputs = declared_inputs(op, shapes)  # token ids for an embedding, so its rank is what is wrong
    node = {"id": "node", "op": op, "in": list(inputs), **args}
    return yaml.safe_dump({"blockgraph": 1, "name": "ranks", "inputs": inputs, "nodes": [node]}, sort_keys=False)


def test_every_built_in_op_declares_its_ranks():
    for op, cls in BUILT_IN.items():
        assert any("ranks" in vars(k) for k in cls.__mro__ if k not in (Block, Composite)), \
            f"{op} does not declare `ranks` (the input ranks it takes, or None for any)"
        assert cls.ranks is None or (cls.ranks and set(cls.ranks) <= {1, 2, 3}), (op, cls.ranks)


@pytest.mark.parametrize("op", [op for op in RANKED if issubclass(BUILT_IN[op], Block)])
def test_every_declared_rank_has_an_example_the_harness_runs(op):
    cls = BUILT_IN[op]
    covered = {len(shapes[0]) for _, shapes in cls.examples}
    assert set(cls.ranks) <= covered, f"{op} takes ranks {cls.ranks}, its examples only {sorted(covered)}"


@pytest.mark.parametrize("op", RANKED)
def test_every_other_rank_is_a_located_error(op):
    cls = BUILT_IN[op]
    args, shapes = cls.examples[0]
    for rank in sorted(set(SHAPES) - set(cls.ranks)):
        shape = SHAPES[rank]
        text = _spec(op, args, [shape, *shapes[1:]])
        with pytest.raises(SpecError) as info:
            compiler.analyze(compiler.load(text))
        problem = info.value.first
        assert (problem.loc.line, problem.loc.col) == (text.splitlines().index("- id: node") + 1, 3), problem
        if issubclass(cls, Block):  # a composite's message comes from the block inside it
            assert f"({op}): {op} expects " in problem.message, problem.message
            assert "[" + ", ".join(map(str, shape)) + "]" in problem.message, problem.message


def test_the_rank_message_names_what_the_op_takes_and_the_fix():
    text = _spec("linear", {"out": 3}, [(4, 6, 6)])
    with pytest.raises(SpecError) as info:
        compiler.analyze(compiler.load(text))
    assert info.value.first.message == ("node 'node' (linear): linear expects a flat vector [features] or a "
                                        "sequence [time, features]. Received: input shape [4, 6, 6]; add "
                                        "{op: flatten} or {op: gap} before it")
    text = _spec("gru", {"hidden": 3}, [(3, 32, 32)])
    with pytest.raises(SpecError) as info:
        compiler.analyze(compiler.load(text))
    assert info.value.first.message.startswith(
        "node 'node' (gru): gru expects a sequence [time, features]. Received: input shape [3, 32, 32]; "
        "reshape or permute it to [T, F] first, e.g. row by row (32 steps of 3*32 features)")
    text = _spec("yolo_head", {"grid": 2, "boxes": 1, "classes": 1}, [(6, 2)])
    with pytest.raises(SpecError) as info:
        compiler.analyze(compiler.load(text))
    assert info.value.first.message == (
        "node 'node' (yolo_head): yolo_head expects a flat vector [features] or a feature map [channels, "
        "height, width]. Received: input shape [6, 2]; here 24 features or a [6, 2, 2] map")


def test_the_docs_input_line_comes_from_ranks():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs"))
    from gen_reference import input_line

    assert input_line(BUILT_IN["conv"]) == "**Input**: `[C, H, W]` (rank 3) only."
    assert input_line(BUILT_IN["norm"]) == "**Input**: `[F]`, `[C, L]` or `[C, H, W]` (rank 1, 2 or 3)."
    assert input_line(BUILT_IN["lstm"]) == "**Input**: `[T, F]` (rank 2) only."
    assert input_line(BUILT_IN["add"]) == "**Input**: any rank, the same for every input."
    assert input_line(BUILT_IN["roi_align"]) == ("**Input**: `[C, H, W]` (rank 3) only, and the boxes `[R, 4]` "
                                                 "as input 2.")
    text = (Path(__file__).resolve().parents[2] / "docs" / "blocks.md").read_text()
    for op, cls in BUILT_IN.items():
        section = text[text.index(f"### `{op}`"):]
        assert input_line(cls) in section[: section.index("<!-- end table -->")], op
