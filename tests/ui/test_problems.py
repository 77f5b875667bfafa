"""How the page words problems (ui/problems.py): the open file's name instead of `<string>`,
the Vars field instead of `--var`, wherever a message is shown (the list, a refused Start, a
failed run, a sweep row)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import compiler
from compiler import Problem
from compiler.errors import Loc
from ui import designer as d
from ui import problems as pr

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("cli, page", [
    ("the spec's output has 10 classes, the dataset 'shapes' has 6: set vars.classes to 6 (--var classes=6)",
     "the spec's output has 10 classes, the dataset 'shapes' has 6: set the `classes` field under Vars to 6"),
    ("set vars.n_cls to 21 (--var n_cls=21), or let the dataset set it: `n_cls: {dataset: classes, default: 20}`",
     "set the `n_cls` field under Vars to 21, or let the dataset set it: `n_cls: {dataset: classes, default: 20}`"),
    ("has 6: the override --var classes=10 sets it: set it to 6 or leave it out",
     "has 6: the `classes` field under Vars sets it to 10: set it to 6 there, or reset the vars to the text's values"),
    ("try a smaller model (--var width=16)", "try a smaller model (the `width` field under Vars: 16)"),
    ("pass --var width=16 instead", "pass the `width` field under Vars set to 16 instead"),
    ("expected a positive integer, got -1", "expected a positive integer, got -1"),
])
def test_command_line_advice_becomes_the_vars_field(cli, page):
    assert pr.in_page_words(cli) == page


def test_problems_name_the_open_file_or_untitled():
    text = "blockgraph: 1\nname: t\ninputs: {x: [3, 8, 8]}\nnodes:\n  - {op: conv, out: -1}\n"
    file = str(ROOT / "specs" / "mine.yaml")
    with pytest.raises(compiler.SpecError) as named:
        d.load_text(text, None, file)
    assert named.value.first.loc.file == file
    assert pr.error_text(named.value, file) == "specs/mine.yaml:5:21: nodes[0].out: expected a positive integer, got -1"
    with pytest.raises(compiler.SpecError) as untitled:
        d.load_text(text)
    assert pr.error_text(untitled.value, "") == "untitled.yaml:5:21: nodes[0].out: expected a positive integer, got -1"
    assert pr.problem_title(untitled.value.first, pr.UNTITLED).startswith("line 5, col 21: ")  # in the text
    overrides = Problem(Loc("<vars>", 1, 1), "unknown var 'widht'", "vars")
    settings = Problem(Loc("<arguments>", 1, 1), "batch_size 64 is larger than the training set", "batch_size")
    assert pr.problem_line(overrides, file) == "var overrides: vars: unknown var 'widht'"
    assert pr.problem_line(settings, file) == "Train form, Batch size: batch_size 64 is larger than the training set"
    other = Problem(Loc("<config>", 1, 1), "unknown key 'lrr'", "lrr")
    assert pr.problem_line(other, file) == "settings: lrr: unknown key 'lrr'"


def test_summary_rows_say_how_many_copies_a_repeat_stands_for():
    rows = d.refresh((ROOT / "specs" / "default.yaml").read_text(), None, str(ROOT / "specs" / "default.yaml")).rows
    stage = next(r for r in rows if r["id"] == "stage1")  # `repeat: 2` of a conv
    assert (stage["op"], stage["nodes"]) == ("conv ×2", 2)
    view = d.refresh((ROOT / "specs" / "resnet20_cifar.yaml").read_text(), None,
                     str(ROOT / "specs" / "resnet20_cifar.yaml"))
    repeats = [r for r in view.rows if "×" in r["op"]]
    assert repeats and all(r["nodes"] % int(r["op"].split("×")[1]) == 0 for r in repeats)
    assert "×" in view.dot and "nodes)" in view.dot


def test_the_train_tab_shows_a_class_mismatch_in_the_page_s_words(app):
    sys.path.insert(0, str(ROOT / "tests" / "train"))
    from train_support import TINY

    app.session_state["yaml"] = TINY.replace("classes: 6", "classes: 10")
    app.run()
    for key, value in (("train_epochs", 1), ("train_size", 64), ("train_val", 32)):
        app.number_input(key=key).set_value(value)
    next(b for b in app.button if b.label == "Start").click()
    app.run()
    app.session_state["designer"].train.join(120)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    shown = [e.value for e in app.error if "classes" in e.value]
    assert len(shown) == 1, [e.value for e in app.error]
    assert shown[0].startswith("specs/default.yaml:5:")  # the open file, at the var's line
    assert "set the `classes` field under Vars to 6" in shown[0] and "--var" not in shown[0]
