"""check_compatible: a spec's input shape and class count against a dataset, with located messages."""

from __future__ import annotations

from pathlib import Path

import pytest

import compiler
from compiler.data import DatasetInfo, build_dataset, check_compatible

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "specs" / "default.yaml"
MNIST = DatasetInfo("mnist", 10, (1, 28, 28), [str(i) for i in range(10)])


def line_of(path: Path, prefix: str) -> tuple[int, int]:
    """1-based line and column of the value after `prefix` (e.g. 'classes:') in a file."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        stripped = line.lstrip()
        if stripped.startswith(prefix):
            rest = stripped[len(prefix):]
            return number, len(line) - len(stripped) + len(prefix) + len(rest) - len(rest.lstrip()) + 1
    raise AssertionError(f"{prefix} not in {path}")


def problems(spec, info, **kwargs) -> list[compiler.Problem]:
    with pytest.raises(compiler.SpecError) as err:
        check_compatible(spec, info, **kwargs)
    return err.value.errors


@pytest.fixture
def fixed(tmp_path) -> Path:
    """default.yaml with a fixed class count (10) instead of one bound to the dataset."""
    path = tmp_path / "fixed.yaml"
    path.write_text(DEFAULT.read_text().replace("classes: {dataset: classes, default: 10}", "classes: 10"))
    assert path.read_text() != DEFAULT.read_text()
    return path


def test_class_count_names_the_var_at_its_line(fixed):
    _, shapes = build_dataset("shapes", "train", precompute=False)
    [problem] = problems(compiler.load(fixed), shapes)
    assert problem.path == "vars.classes"
    assert (problem.loc.line, problem.loc.col) == line_of(fixed, "classes:")
    assert problem.message == ("the spec's output has 10 classes, the dataset 'shapes' has 6: "
                               "set vars.classes to 6 (--var classes=6), or let the dataset set it: "
                               "`classes: {dataset: classes, default: 10}`")
    assert str(problem).startswith(f"{fixed}:{problem.loc.line}:")


def test_a_class_count_bound_to_the_dataset_fits_any_dataset():
    _, shapes = build_dataset("shapes", "train", precompute=False)
    check_compatible(compiler.load(DEFAULT), shapes)


def test_input_shape_message():
    [problem] = problems(str(DEFAULT), MNIST)
    assert problem.path == "inputs.image"
    assert (problem.loc.line, problem.loc.col) == line_of(DEFAULT, "image:")
    assert problem.message == ("the dataset 'mnist' gives [1, 28, 28], the spec takes [3, 32, 32]; "
                               "set inputs.image to [1, 28, 28] (or pass size=32 / channels=3)")


def test_both_problems_at_once(fixed):
    info = DatasetInfo("mnist", 6, (1, 32, 32), list("abcdef"))
    found = problems(compiler.analyze(compiler.load(fixed)), info)
    assert [p.path for p in found] == ["inputs.image", "vars.classes"]
    assert found[0].message.endswith("(or pass channels=3)")


def test_a_fitting_spec_passes():
    _, info = build_dataset("shapes", "train", precompute=False)
    check_compatible(compiler.load(DEFAULT, vars={"classes": 6}), info)
    check_compatible(DEFAULT, DatasetInfo("cifar10", 10, (3, 32, 32), [str(i) for i in range(10)]))


def test_without_a_var_points_at_the_output_node():
    text = ("blockgraph: 1\nname: literal\ninputs:\n  x: [3, 32, 32]\nvars:\n  width: 16\nnodes:\n"
            "  - {op: conv, out: $width, k: 3}\n  - {op: gap}\n  - {id: head, op: linear, out: 10}\n")
    [problem] = problems(text, DatasetInfo("shapes", 6, (3, 32, 32), list("abcdef")))
    assert problem.path == "nodes[2].out" and problem.loc.line == 10
    assert "output has 10 classes" in problem.message and "'head'" in problem.message


def test_the_var_the_output_uses_wins():
    text = ("blockgraph: 1\nname: two\ninputs:\n  x: [3, 32, 32]\nvars:\n  width: 10\n  n_out: 10\nnodes:\n"
            "  - {op: conv, out: $width, k: 3}\n  - {op: gap}\n  - {op: linear, out: $n_out}\n")
    [problem] = problems(text, DatasetInfo("shapes", 6, (3, 32, 32), list("abcdef")))
    assert problem.path == "vars.n_out" and problem.loc.line == 7


def test_several_inputs_need_a_name():
    text = ("blockgraph: 1\nname: two_inputs\ninputs:\n  a: [3, 32, 32]\n  b: [16]\nnodes:\n"
            "  - {id: f, op: gap, in: a}\n  - {op: concat, in: [f, b]}\n  - {op: linear, out: 6}\n")
    info = DatasetInfo("shapes", 6, (3, 32, 32), list("abcdef"))
    check_compatible(text, info)  # only `a` has the dataset's rank
    check_compatible(text, info, input_name="a")
    [problem] = problems(text, info, input_name="c")
    assert "no input 'c'" in problem.message


def test_detection_skips_the_class_count():
    info = DatasetInfo("shapes", 6, (3, 32, 32), list("abcdef"), task="detection")
    check_compatible(DEFAULT, info)
