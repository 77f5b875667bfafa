"""The ui/designer/ package without Streamlit: loading by text, error quoting, node insertion, palette
forms, vars and the training slot."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import compiler
from compiler.blocks import registry
from ui import designer as d
from ui.templates import TEMPLATES

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = (ROOT / "specs" / "default.yaml").read_text()
RESNET50 = (ROOT / "specs" / "resnet50.yaml").read_text()


def test_text_with_extends_resolves_next_to_its_file():
    text = (ROOT / "specs" / "resnet18.yaml").read_text()
    result = d.analyse(text, None, str(ROOT / "specs" / "resnet18.yaml"))
    assert result.ok and result.analysis.params == 11_689_512


def test_refresh_is_cached_by_text_and_vars():
    file = str(ROOT / "specs" / "default.yaml")
    a = d.refresh(DEFAULT, None, file)
    assert d.refresh(DEFAULT, None, file) is a
    b = d.refresh(DEFAULT, {"width": 16}, file)
    assert b is not a and b.result.analysis.params == 72_954
    assert d.refresh(DEFAULT, {"width": 16.0}, file) is not b, "types are part of the key"
    assert a.dot and "node-stage1" in a.dot and len(a.rows) == 8


def test_refresh_depth_is_clamped_and_expands():
    file = str(ROOT / "specs" / "resnet50.yaml")
    collapsed = d.refresh(RESNET50, None, file, depth=0)
    full = d.refresh(RESNET50, None, file, depth=99)
    assert collapsed.depth == 0 and len(collapsed.rows) == 8
    assert full.depth == full.result.max_depth and len(full.rows) == 100  # every node


def test_quote_problem_marks_the_column():
    bad = DEFAULT.replace("out: $classes", "out: -1")
    result = d.analyse(bad)
    (problem,) = result.errors
    text = d.quote_problem(bad, problem, "<string>")
    n = next(i for i, line in enumerate(bad.splitlines(), 1) if "out: -1" in line)
    assert text.splitlines()[0] == f"line {n}, col 39: nodes[7].out: expected a positive integer, got -1"
    assert f">{n} |   - {{id: classifier, op: linear, out: -1}}" in text
    marked = text.splitlines()[2]
    caret = text.splitlines()[3]
    assert caret.index("^") == marked.index("-1")


def test_problem_in_a_parent_file_names_it():
    text = (ROOT / "specs" / "resnet18.yaml").read_text().replace("depth1: 2", "depth1: -2")
    result = d.analyse(text, None, str(ROOT / "specs" / "resnet18.yaml"))
    title = d.problem_title(result.errors[0], str(ROOT / "specs" / "resnet18.yaml"))
    assert title.startswith("specs/resnet50.yaml: line ")


def test_node_entries_name_generated_ids():
    text = DEFAULT.replace("{id: pool, op: gap}", "{op: gap}").replace("{id: drop, op: dropout, p: 0.2}",
                                                                       "{op: dropout, p: 0.2}")
    ids = [e.id for e in d.node_entries(text)]
    assert ids == ["stage1", "pool1", "stage2", "pool2", "stage3", "gap1", "dropout1", "classifier"]
    spec = compiler.load(text)
    assert {"gap1", "dropout1"} <= {n.id for n in spec.nodes}


@pytest.mark.parametrize("after", [None, 0, 3, 7])
def test_insert_keeps_every_other_line(after):
    line = "{op: identity}"
    new, at = d.insert_node(DEFAULT, after, line)
    old_lines, new_lines = DEFAULT.splitlines(), new.splitlines()
    assert new_lines[at - 1] == "  - " + line
    assert new_lines[: at - 1] + new_lines[at:] == old_lines
    entries = d.node_entries(new)
    assert entries[0 if after is None else after + 1].op == "identity"
    assert compiler.analyze(compiler.load(new)).params == 288_746


def test_insert_after_a_multiline_block_item():
    text = """blockgraph: 1
name: t
inputs: {x: [3, 8, 8]}
nodes:
  - op: conv
    out: 4
    # a comment inside the item

  - {id: tail, op: gap}
outputs: [tail]
"""
    new, at = d.insert_node(text, 0, "{op: identity}")
    assert new.splitlines()[at - 1] == "  - {op: identity}"
    assert new.splitlines()[at - 2] == "    out: 4"
    assert compiler.load(new)


def test_insert_at_the_end_without_trailing_newline():
    text = DEFAULT.replace("outputs: [classifier]\n", "").rstrip("\n")
    new, at = d.insert_node(text, 7, "{op: act, kind: softmax}")
    assert new.endswith("  - {op: act, kind: softmax}\n")
    assert compiler.analyze(compiler.load(new)).graph.outputs == ["act1"]


def test_insert_refuses_flow_lists_and_inherited_nodes():
    flow = "blockgraph: 1\nname: t\ninputs: {x: [4]}\nnodes: [{op: linear, out: 2}]\n"
    with pytest.raises(d.InsertError, match="flow list"):
        d.insert_node(flow, 0, "{op: identity}")
    with pytest.raises(d.InsertError, match="extends"):
        d.insert_node((ROOT / "specs" / "resnet18.yaml").read_text(), 0, "{op: identity}")


def test_flow_line_round_trips_through_the_compiler_parser():
    args = {"out": "$width * 2", "k": [3, 5], "norm": {"kind": "group", "groups": 4}, "act": "yes",
            "bias": False, "eps": 1e-05, "label": "a: b", "n": None, "s": "3"}
    line = d.flow_line("conv", args, "c1")
    assert d.read_value(line) == {"id": "c1", "op": "conv", **args}


@pytest.mark.parametrize("op", registry.names())
def test_palette_form_of_every_builtin_gives_a_valid_block(op):
    fields = d.palette_fields(op)
    args = d.collect_args(fields, {})
    line = d.flow_line(op, args)
    node = d.read_value(line)
    registry.get(op).model_validate(node)  # the initial form values make a valid block


def test_collect_args_writes_only_changes():
    fields = d.palette_fields("conv")
    assert d.collect_args(fields, {"out": 16}) == {"out": 16}
    args = d.collect_args(fields, {"out": 16, "k": "[1, 3]", "norm": "batch", "act": "relu", "bias": False})
    assert args == {"out": 16, "k": [1, 3], "bias": False, "norm": "batch", "act": "relu"}
    with pytest.raises(ValueError, match="k: not valid YAML"):
        d.collect_args(fields, {"out": 16, "k": "[1, "})


def test_user_block_fields_come_from_its_params_and_last_use():
    spec = compiler.load(RESNET50)
    fields = {f.name: f for f in d.palette_fields("stage", spec)}
    assert fields["out"].required and fields["out"].kind == "int" and fields["out"].initial == 2048
    assert not fields["stride"].required and fields["stride"].default == 2
    assert "stage" in d.palette_ops(spec)


def test_templates_load():
    for label, text in TEMPLATES.items():
        result = d.analyse(text)
        assert result.ok, (label, result.errors)
        assert not result.warnings, label


def test_vars_overrides_and_parsing():
    base = {"width": 32, "drop": 0.2, "body": "basic", "se": None, "aux": False}
    assert d.overrides(base, dict(base)) == {}
    assert d.overrides(base, {**base, "width": 16, "se": 16}) == {"width": 16, "se": 16}
    assert d.overrides(base, {**base, "drop": 0.2}) == {}
    assert d.parse_var("16") == 16 and d.parse_var("null") is None and d.parse_var("yes") == "yes"
    assert d.parse_var("1e-3") == 0.001 and d.parse_var("bottleneck") == "bottleneck"
    assert [d.var_kind(v) for v in base.values()] == ["int", "float", "text", "text", "bool"]


def test_save_text_is_atomic_and_checks_the_name(tmp_path):
    path = d.save_text(str(tmp_path / "a.yaml"), "x: 1\n")
    assert path.read_text() == "x: 1\n" and not list(tmp_path.glob("*.tmp"))
    with pytest.raises(ValueError, match=".yaml"):
        d.save_text(str(tmp_path / "a.txt"), "x")


def test_generated_code_is_the_forward():
    code = d.code_file(DEFAULT, None, "<string>", "cifar_small")
    assert "def forward(self, image):" in code and code.startswith("# forward() that blockgraph generates")


def test_diff_of_two_results():
    a = d.zoo_result("resnet50.yaml")
    b = d.zoo_result("seresnet50.yaml")
    result = d.diff_of(a, b, 1)
    assert sum(c.kind == "changed" for c in result.changes) == 16
    assert d.diff_of(a, b, 1) is result


def test_train_job_runs_a_worker_in_the_background(tmp_path):
    job = d.TrainJob()
    assert job.state == "idle"
    weights = tmp_path / "model.safetensors"

    def worker(steps, *, job):
        for step in range(steps):
            if job.stop_requested:
                return "stopped"
            job.report(step=step, loss=1.0 / (step + 1))
        weights.write_bytes(b"w")
        job.weights_path = weights
        return "ok"

    job.start(worker, 3, label="demo")
    job.join(10)
    assert job.state == "done" and job.result == "ok" and job.weights_path == weights
    assert [e["step"] for e in job.events()] == [0, 1, 2]

    def failing(*, job):
        raise RuntimeError("boom")

    job.start(failing)
    job.join(10)
    assert job.state == "failed" and "boom" in str(job.error)

    def slow(*, job):
        while not job.stop_requested:
            time.sleep(0.01)

    job.start(slow)
    with pytest.raises(RuntimeError, match="already"):
        job.start(slow)
    job.cancel()
    job.join(10)
    assert job.state == "stopped"


def test_the_designer_package_imports_without_streamlit():
    """Every module of ui/designer/ (and the Streamlit-free helpers beside it) imports with
    `streamlit` made unimportable: the logic never draws."""
    import subprocess
    import sys

    modules = sorted(f"ui.designer.{p.stem}" for p in (ROOT / "ui" / "designer").glob("*.py") if p.stem != "__init__")
    assert {"ui.designer.caching", "ui.designer.forms", "ui.designer.jobs", "ui.designer.session"} <= set(modules)
    code = ("import sys; sys.modules['streamlit'] = None\n"  # `import streamlit` now raises ImportError
            "import importlib\n"
            f"for name in {['ui.designer', 'ui.problems', 'ui.train_panel', 'ui.sweep', 'ui.editor'] + modules!r}:\n"
            "    importlib.import_module(name)\n"
            "try:\n    import streamlit\nexcept ImportError:\n    print('blocked')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "blocked"


def test_ui_modules_stay_small():
    """Issue 19: no file of ui/ over 500 lines; the Streamlit-free package's modules under 400."""
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in (ROOT / "ui").rglob("*.py")}
    assert sizes["ui/app.py"] > 50  # the walk found the page
    assert {name: n for name, n in sizes.items() if n > 500} == {}
    assert {name: n for name, n in sizes.items() if name.startswith("ui/designer/") and n >= 400} == {}
