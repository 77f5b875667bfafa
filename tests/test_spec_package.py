"""The spec loader as a package (compiler/spec/): what it promises beyond the messages that
tests/test_spec.py, test_bad_specs.py and test_user_blocks.py check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_loading_a_spec_never_imports_torch():
    """Composites (resnet50) and user blocks (googlenet) load, and a bad spec is reported,
    with torch unimportable: validating a spec needs no torch."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "import compiler.spec as s\n"
            "assert len(s.load('specs/resnet50.yaml').nodes) > 50\n"
            "assert s.load('specs/googlenet.yaml').blocks\n"
            "try:\n"
            "    s.load('blockgraph: 1\\nname: x\\ninputs: {x: [3, 8, 8]}\\nnodes: [{op: conv, out: -1}]\\n')\n"
            "except s.SpecError as exc:\n"
            "    assert 'positive integer' in str(exc)\n"
            "else:\n"
            "    raise AssertionError('no error')\n"
            "assert 'torch' not in [m.split('.')[0] for m, v in sys.modules.items() if v is not None]\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_public_names_keep_their_home():
    import compiler.spec as spec

    for name in ("load", "load_document", "with_vars", "Spec", "Node", "Group", "SpecDocument", "BlockDef",
                 "Scaling", "DatasetVar", "DATASET_FACTS", "FORMAT_VERSION", "ID_PATTERN", "NODE_KEYS",
                 "SYNONYMS", "SpecError", "did_you_mean", "pydantic_message", "whole_var"):
        assert hasattr(spec, name), name
    assert callable(spec.load)  # the function, not a submodule of the same name


def test_node_keys_are_the_ones_the_language_documents():
    from compiler.spec import NODE_KEYS, NodeKeys

    assert NODE_KEYS == ("op", "id", "in", "repeat", "first", "init", "when", "scalable")
    assert NodeKeys.model_validate({"op": "conv", "in": ["a", "b"], "out": 8}).inputs == ["a", "b"]


def test_the_schema_gives_every_op_the_node_keys():
    from compiler.blocks import registry
    from compiler.schema import json_schema
    from compiler.spec import NODE_KEYS

    schema = json_schema()
    for op in ("conv", "residual", "linear"):
        own = {f for f in registry.get(op).model_fields if f != "op"}
        assert set(schema["$defs"][f"op_{op}"]["properties"]) - own == set(NODE_KEYS), op


@pytest.mark.parametrize("text, name", [("$width", "width"), ("  $w_2 ", "w_2"), ("$a * 2", None),
                                        ("width", None), ("$2a", None), ("$a$b", None)])
def test_whole_var_names_a_var_standing_alone(text, name):
    from compiler.spec import whole_var

    assert whole_var(text) == name


def test_a_var_standing_alone_keeps_its_type_in_the_train_settings():
    import compiler
    from compiler.train.config import spec_source

    spec = compiler.load("blockgraph: 1\nname: t\ninputs: {x: [4]}\nvars: {data: shapes, lr: 0.5}\n"
                         "nodes: [{op: linear, out: 2}]\ntrain: {dataset: $data, lr: $lr * 2}\n")
    values = spec_source(spec).values
    assert values["dataset"] == "shapes" and values["lr"] == 1.0


def test_each_module_of_the_package_stays_small():
    for path in sorted((ROOT / "compiler" / "spec").glob("*.py")):
        assert len(path.read_text().splitlines()) < 400, path.name


def test_the_node_keys_said_to_take_expressions_take_them():
    """repeat, when and scalable read `$vars` (NodeKeys.EXPRESSIONS, shown in the docs' table)."""
    import compiler
    from compiler.spec import NodeKeys

    assert set(NodeKeys.EXPRESSIONS) == {"repeat", "when", "scalable"}
    spec = compiler.load("blockgraph: 1\nname: t\ninputs: {x: [3, 8, 8]}\n"
                         "vars: {n: 2, keep: false, fixed: false}\nscaling: {width: 2}\nnodes:\n"
                         "  - {op: conv, out: 8, k: 3, id: a, repeat: $n, scalable: $fixed}\n"
                         "  - {op: conv, out: 8, k: 3, id: b, when: $keep}\n"
                         "  - {op: conv, out: 8, k: 3, id: c}\n")
    assert [(n.id, n.block.out) for n in spec.nodes] == [("a.0", 8), ("a.1", 8), ("c", 16)]
