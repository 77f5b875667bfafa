"""Specs train as written: every zoo spec with a `train:` section trains one short epoch with its
own settings (only the epoch count, the batch and the number of images are cut), and vars bound to the
dataset (`classes: {dataset: classes, default: N}`) take the dataset's class count."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import compiler
from compiler.data import build_dataset

ROOT = Path(__file__).resolve().parents[2]
TRAINED = sorted(p for p in (ROOT / "specs").glob("*.yaml")
                 if isinstance(yaml.safe_load(p.read_text()), dict) and yaml.safe_load(p.read_text()).get("train"))


def test_the_small_specs_have_train_sections():
    """Not vacuous: the default and the shapes specs say how they train."""
    names = {p.stem for p in TRAINED}
    assert {"default", "unet_small_shapes", "yolov1_shapes", "fast_rcnn_shapes"} <= names


@pytest.mark.parametrize("path", TRAINED, ids=lambda p: p.stem)
def test_a_spec_with_a_train_section_trains_one_short_epoch(path, tmp_path):
    # the spec's own dataset, optimizer, lr, schedule...; one epoch of two 4-image steps
    result = compiler.train(path, epochs=1, batch_size=4, train_size=8, val_size=4, run_dir=str(tmp_path / "run"),
                            quiet=True)
    row = result.final
    assert row is not None and row["epoch"] == 1
    assert row["train_loss"] == row["train_loss"]  # a number, not NaN
    assert (tmp_path / "run" / "model.safetensors").is_file()


DEFAULT = ROOT / "specs" / "default.yaml"


def test_the_default_binds_classes_to_the_dataset():
    spec = compiler.load(DEFAULT)
    assert spec.dataset_vars == {"classes": "classes"}
    assert spec.vars["classes"] == 10  # the default: validate, summary and build use it
    assert list(compiler.analyze(spec).graph.shapes["classifier"]) == [10]


def test_training_sets_a_bound_var_from_the_dataset(tmp_path):
    _, info = build_dataset("shapes", "val", size=32, val_size=8)
    assert info.num_classes != 10  # else the test could not tell the default from the dataset's value
    result = compiler.train(DEFAULT, epochs=1, train_size=32, val_size=16, batch_size=16,
                            run_dir=str(tmp_path / "run"), quiet=True)
    saved = compiler.load(tmp_path / "run" / "spec.yaml", vars={"classes": info.num_classes})
    assert compiler.analyze(saved).graph.shapes["classifier"][0] == info.num_classes
    # the checkpoint keeps the value, so a resumed run builds the same model
    again = compiler.train(resume=str(tmp_path / "run"), epochs=2, quiet=True)
    assert again.final["epoch"] == 2 and result.final["epoch"] == 1


def test_an_override_fixes_a_bound_var_and_a_mismatch_is_located(tmp_path):
    with pytest.raises(compiler.SpecError) as info:
        compiler.train(DEFAULT, vars={"classes": 10}, epochs=1, train_size=32, val_size=16, batch_size=16,
                       run_dir=str(tmp_path / "run"), quiet=True)
    text = str(info.value)
    line = next(i for i, l in enumerate(DEFAULT.read_text().splitlines(), 1) if l.lstrip().startswith("classes:"))
    assert f"default.yaml:{line}:" in text
    assert "the override --var classes=10 sets it" in text and "leave it out" in text


def test_a_fixed_class_count_says_how_to_bind_it(tmp_path):
    text = DEFAULT.read_text().replace("classes: {dataset: classes, default: 10}", "classes: 10")
    spec = tmp_path / "fixed.yaml"
    spec.write_text(text)
    with pytest.raises(compiler.SpecError) as info:
        compiler.train(spec, epochs=1, train_size=32, val_size=16, batch_size=16, run_dir=str(tmp_path / "r"),
                       quiet=True)
    message = str(info.value)
    assert "fixed.yaml:10:" in message
    assert "`classes: {dataset: classes, default: 10}`" in message and "--var classes=6" in message


@pytest.mark.parametrize("value, expected", [
    ("{dataset: klasses, default: 10}", ":22: vars.classes.dataset: expected one of 'classes', got 'klasses'"),
    ("{dataset: classes}", "vars.classes.default: missing required key 'default'"),
    ("{dataset: classes, default: 0}", ":40: vars.classes.default: expected a positive integer, got 0"),
    ("{dataset: classes, default: 10, size: 3}", "unknown key 'size' in vars (allowed: dataset, default)"),
])
def test_a_bad_binding_is_a_located_error(value, expected):
    text = DEFAULT.read_text().replace("{dataset: classes, default: 10}", value)
    with pytest.raises(compiler.SpecError) as info:
        compiler.load(text, file="bound.yaml")
    assert len(info.value.errors) == 1, str(info.value)
    assert str(info.value).startswith("bound.yaml:10:") and expected in str(info.value), str(info.value)
