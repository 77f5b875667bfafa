"""Loading a study file: its cells, and every kind of mistake located at the line that makes it
(compiler.study.load_study, patches.py, levels.py, variants.py)."""

from __future__ import annotations

import pytest

from compiler import SpecError
from compiler.study import load_study
from compiler.study.document import NodeSelector, Patch
from compiler.study.patches import LevelPatches, apply_patches

from study_files import TINY_STUDY, write_study


def _problems(path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_study(path)
    return [str(p) for p in info.value.errors]


def _line_of(path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_the_grid_is_every_level_of_every_factor_times_the_seeds(tmp_path):
    path = write_study(tmp_path, TINY_STUDY.replace("seeds: 1", "seeds: [3, 5]"))
    study = load_study(path)
    assert study.factors == {"width": ["4", "8"], "norm": ["batch", "none"]}
    assert len(study.cells) == 2 * 2 * 2
    assert study.cells[0].key == "width=4,norm=batch,seed=3"
    assert {c.key for c in study.cells} == {f"width={w},norm={n},seed={s}" for w in (4, 8) for n in ("batch", "none")
                                            for s in (3, 5)}
    cell = study.cell("width=8,norm=none,seed=5")
    assert cell.spec.vars["width"] == 8 and cell.train["epochs"] == 1
    # the patch took every norm off: conv weights + biases only (3*8*9 + 8 + 8*8*9 + 8 + 8*6 + 6)
    assert cell.variant.analysis.params == 3 * 8 * 9 + 8 + 8 * 8 * 9 + 8 + 8 * 6 + 6
    batch = study.cell("width=8,norm=batch,seed=5")
    assert batch.variant.analysis.params == 3 * 8 * 9 + 8 * 8 * 9 + 2 * (2 * 8) + 8 * 6 + 6  # conv without bias + BN
    assert study.out_dir.name == "study-tiny" and load_study(path, quick=True).out_dir.name == "study-tiny-quick"


def test_levels_for_other_specs_are_left_out_of_their_cells(tmp_path):
    write_study(tmp_path)
    (tmp_path / "other.yaml").write_text((tmp_path / "tiny.yaml").read_text().replace("name: tiny", "name: other"))
    path = tmp_path / "two.yaml"
    path.write_text("blockgraph_study: 1\nname: two\nspecs: {a: tiny.yaml, b: other.yaml}\n"
                    "factors:\n  width:\n    - {label: w4, vars: {width: 4}, specs: [b]}\n"
                    "    - {label: w8, vars: {width: 8}, specs: [b]}\n"
                    "train: {epochs: 1, size: 16}\n")
    study = load_study(path)
    assert [c.key for c in study.cells] == ["spec=a,seed=0", "spec=b,width=w4,seed=0", "spec=b,width=w8,seed=0"]
    assert study.factors == {"spec": ["a", "b"], "width": ["w4", "w8"]}


def test_quick_keeps_its_levels_seeds_and_budget(tmp_path):
    text = TINY_STUDY + "quick: {seeds: [7], levels: {width: ['4']}, train: {epochs: 2}}\n"
    study = load_study(write_study(tmp_path, text), quick=True)
    assert [c.key for c in study.cells] == ["width=4,norm=batch,seed=7", "width=4,norm=none,seed=7"]
    assert study.cells[0].train["epochs"] == 2


@pytest.mark.parametrize("change, located_at, expected", [
    (("var: width", "var: widht"), "var: widht", "spec 'tiny' has no var 'widht' (its vars: classes, width)"),
    (("{norm: null}", "{norm: blah}"), "label: none", "factor 'norm', level 'none': spec 'tiny'"),
    (("has: norm", "has: dropout"), "label: none", "selects no node (has: dropout)"),
    (("epochs: EPOCHS", "epoch: EPOCHS"), "epoch: 1", "unknown key 'epoch' in train; did you mean 'epochs'?"),
    (("by: [norm]", "by: [nrom]"), "by: [nrom]", "no factor is named 'nrom'; did you mean 'norm'?"),
    (("seeds: 1", "seeds: 1\nprobes: [{probe: signal_sdt}]"), "signal_sdt", "unknown probe 'signal_sdt'"),
    (("seeds: 1", "seeds: 1\nprobes: [{probe: signal_std, layers: everything}]"), "signal_std", "layers"),
    (("train: {", "train: {seed: 3, "), "seed: 3", "a study cannot set train key 'seed'"),
    (("width: {var", "seed: {var"), "seed: {var", "a factor cannot be named 'seed'"),
    (("specs: tiny.yaml", "specs: nothere.yaml"), "nothere.yaml", "no such spec file 'nothere.yaml'"),
    (("levels: [4, 8]", "levels: [4, 4]"), "levels: [4, 4]", "two levels labelled '4'"),
    (("width: {var: width, levels: [4, 8]}", "width: [4, 8]"), "width: [4, 8]", "needs `var:` or `train:`"),
    (("batch_size: 16", "batch_size: 100"), "batch_size: 100", "batch_size 100 is larger than the training set (train_size 64)"),
    (("seeds: 1", "seeds: 1\nprobes: [{probe: signal_std, where: {nrom: none}}]"), "nrom", "no factor is named 'nrom'"),
    (("seeds: 1", "seeds: 1\nprobes: [{probe: signal_std, where: {norm: group}}]"), "norm: group",
     "factor 'norm' has no level 'group' (its levels: batch, none)"),
    (("seeds: 1", "seeds: 1\nprobes: [{probe: signal_std, where: {seed: 3}}]"), "seed: 3",
     "the study has no seed 3 (its seeds: 0)"),
])
def test_mistakes_are_located_in_the_study_file(tmp_path, change, located_at, expected):
    path = write_study(tmp_path, TINY_STUDY.replace(*change))
    problems = _problems(path)
    line = _line_of(path, located_at)
    assert any(p.startswith(f"{path}:{line}:") and expected in p for p in problems), problems


def test_a_mistake_in_a_list_form_level_is_one_error_with_the_levels_keys(tmp_path):
    # pydantic tries both forms of a factor (a map with levels:, a list of levels): only the one
    # the user wrote is reported, with its own keys
    path = write_study(tmp_path, TINY_STUDY.replace("{label: none, patch", "{label: none, pach"))
    problems = _problems(path)
    assert problems == [f"{path}:{_line_of(path, 'pach:')}:21: factors.norm[1].pach: unknown key 'pach' in factors; "
                        "did you mean 'patch'? (allowed: label, vars, patch, train, specs)"]


def test_a_patch_that_breaks_the_spec_names_the_level_and_the_spec_problem(tmp_path):
    path = write_study(tmp_path, TINY_STUDY.replace("{norm: null}", "{k: 0}"))
    problems = _problems(path)
    assert problems and all(f"{path}:{_line_of(path, 'label: none')}:" in p for p in problems)
    assert all("factor 'norm', level 'none'" in p and "tiny.yaml" in p for p in problems)
    assert any(".k" in p for p in problems), problems


def test_a_probe_that_does_not_apply_is_an_error_before_training(tmp_path):
    path = write_study(tmp_path, TINY_STUDY.replace("seeds: 1", "seeds: 1\nprobes: [{probe: signal_std, layers: recurrent}]"))
    problems = _problems(path)
    assert any("probe 'signal_std' does not apply to cell width=4,norm=batch,seed=0" in p for p in problems), problems


def test_a_probe_with_where_is_recorded_only_in_those_cells(tmp_path):
    # which cells carry a probe, and a probe that would be refused elsewhere is checked only there
    probes = "probes: [{probe: signal_std, where: {width: 8, norm: [none]}}, {probe: filter_similarity}]"
    study = load_study(write_study(tmp_path, TINY_STUDY.replace("seeds: 1", "seeds: 1\n" + probes)))
    carried = {cell.key: [setup.label for setup in cell.probes] for cell in study.cells}
    assert carried == {"width=4,norm=batch,seed=0": ["filter_similarity"],
                       "width=4,norm=none,seed=0": ["filter_similarity"],
                       "width=8,norm=batch,seed=0": ["filter_similarity"],
                       "width=8,norm=none,seed=0": ["signal_std", "filter_similarity"]}
    one_seed = "seeds: 2\nprobes: [{probe: signal_std, where: {seed: 1, width: 4}}]"
    seeded = load_study(write_study(tmp_path, TINY_STUDY.replace("seeds: 1", one_seed)))
    assert [cell.key for cell in seeded.cells if cell.probes] == ["width=4,norm=batch,seed=1", "width=4,norm=none,seed=1"]
    recurrent = "probes: [{probe: signal_std, layers: recurrent, where: {width: 8}}]"
    problems = _problems(write_study(tmp_path, TINY_STUDY.replace("seeds: 1", "seeds: 1\n" + recurrent)))
    assert {p.split("cell ")[1].split(":")[0] for p in problems} == {"width=8,norm=batch,seed=0", "width=8,norm=none,seed=0"}


def _node(**args):
    return {"id": "n", **args}


def test_patches_set_unset_replace_remove_and_set_spec_keys():
    data = {"defaults": {"conv": {"norm": "batch"}}, "init": {"conv": "he_normal"},
            "nodes": [_node(id="a", op="conv", out=4), _node(id="b", op="conv", out=4, norm=None),
                      _node(id="r", op="residual", body=[{"op": "conv", "out": 4, "id": "inner"}], out=4),
                      _node(id="p", op="maxpool", k=2, repeat=2, **{"in": "a"})]}
    levels = [LevelPatches("f", "l", [
        Patch(nodes=NodeSelector(has="norm"), set={"act": "gelu"}),
        Patch(nodes=NodeSelector(id="b"), unset=["norm"]),
        Patch(nodes=NodeSelector(op="maxpool"), replace={"op": "avgpool", "k": 3}),
        Patch(nodes=NodeSelector(id="inner"), remove=True),
        Patch(spec={"init.conv": "zeros", "vars.width": 3}),
    ], ("factors", "f", 0, "patch"))]
    out = apply_patches(data, levels, "s")
    assert out.problems == []
    a, b, r, p = out.data["nodes"]
    # has: norm -> a (from defaults:) and r (residual's own default norm), not b (norm: null)
    assert a["act"] == "gelu" and r["act"] == "gelu" and "act" not in b
    assert "norm" not in b
    assert p == {"id": "p", "in": "a", "repeat": 2, "op": "avgpool", "k": 3}
    assert r["body"][0] == {"id": "inner", "op": "identity"}
    assert out.data["init"] == {"conv": "zeros"} and out.data["vars"] == {"width": 3}
    assert data["nodes"][0] == {"id": "a", "op": "conv", "out": 4}  # the spec's own data is left alone
