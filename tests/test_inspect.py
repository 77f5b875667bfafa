"""Looking at a network before running it: totals against independent counters, receptive
fields, collapsed summaries, renderings and diffs."""

from __future__ import annotations

import json
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch

import compiler
from compiler.analysis import collapse
from compiler.cli import main
from support import OutputRecorder

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
TORCHVISION = {"vgg16": {}, "resnet50": {}, "densenet121": {}, "googlenet": {"aux_logits": False, "init_weights": True}}
PUBLISHED_GMACS = {"vgg16": 15.47, "resnet50": 4.09, "densenet121": 2.83, "googlenet": 1.50}  # torchvision docs


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_macs_agree_with_torchinfo_and_torchvision_docs(name):
    torchinfo = pytest.importorskip("torchinfo")
    torchvision = pytest.importorskip("torchvision")
    ours = compiler.analyze(compiler.load(SPECS / f"{name}.yaml")).macs
    model = getattr(torchvision.models, name)(weights=None, **TORCHVISION[name]).eval()
    theirs = torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0).total_mult_adds
    assert ours == pytest.approx(theirs, rel=0.01)
    assert ours / 1e9 == pytest.approx(PUBLISHED_GMACS[name], rel=0.01)


@pytest.mark.parametrize("name", ["resnet18", "googlenet", "dpn68"])
def test_activation_memory_matches_measured_outputs(name, monkeypatch):
    """The analysis counts every node's output as its own tensor: measured on the graph without
    compiler.inplace's rewrites (which reuse the memory of some sums and ReLUs)."""
    monkeypatch.setattr("compiler.fx.make_inplace", lambda graph, root: 0)
    spec = compiler.load(SPECS / f"{name}.yaml")
    analysis = compiler.analyze(spec, batch=2)
    model = compiler.build(spec, seed=0).eval()
    recorder = OutputRecorder(model)
    with torch.inference_mode():
        recorder.run(torch.randn(2, 3, 224, 224))
    storages, measured = set(), 0
    for tensor in recorder.outputs.values():  # every node output, views of another counted once
        key = tensor.untyped_storage().data_ptr()
        if key not in storages:
            storages.add(key)
            measured += tensor.untyped_storage().nbytes()
    assert analysis.activation_bytes == pytest.approx(measured, rel=0.10)


def rf_of(text: str) -> dict[str, tuple[int, int]]:
    return {n.id: (n.rf, n.jump) for n in compiler.analyze(compiler.load(text)).nodes}


def test_receptive_fields_of_dilated_convs_and_strided_pools():
    rows = rf_of("blockgraph: 1\nname: rf\ninputs: {x: [3, 64, 64]}\nnodes:\n"
                 "  - {id: a, op: conv, out: 4, k: 3, dilation: 2}\n"   # 1 + 2*(3-1) = 5
                 "  - {id: p, op: maxpool, k: 3, stride: 2, pad: 1}\n"  # 5 + 2*1 = 7, jump 2
                 "  - {id: b, op: conv, out: 4, k: 3}\n"                # 7 + 2*2 = 11
                 "  - {id: q, op: avgpool, k: 2}\n"                     # 11 + 1*2 = 13, jump 4
                 "  - {id: c, op: conv, out: 4, k: 3, dilation: 3}\n")  # 13 + 6*4 = 37
    assert rows == {"a": (5, 1), "p": (7, 2), "b": (11, 2), "q": (13, 4), "c": (37, 4)}


def test_vgg16_pool5_sees_212_pixels():
    rows = {n.id: n.rf for n in compiler.analyze(compiler.load(SPECS / "vgg16.yaml")).nodes}
    assert rows["pool5"] == 212


def test_shortcut_receptive_field_follows_the_input_not_the_branch():
    rows = {n.id: (n.rf, n.jump) for n in compiler.analyze(compiler.load(SPECS / "resnet18.yaml")).nodes}
    assert rows["layer2.0.shortcut"][1] == 8 and rows["fc"][1] == 32


def test_collapsed_units_add_up():
    analysis = compiler.analyze(compiler.load(SPECS / "densenet121.yaml"))
    for depth in (0, 1, 2, None):
        units = collapse(analysis, depth)
        assert sum(u.params for u in units) == analysis.params
        assert sum(u.macs for u in units) == analysis.macs
    top = {u.id: u for u in collapse(analysis, 0)}
    assert list(top)[:4] == ["conv0", "pool0", "denseblock1", "transition1"]
    assert top["denseblock1"].shape == (256, 56, 56) and top["denseblock1"].kind == "composite"


def test_summary_depth_cli(capsys):
    assert main(["summary", "specs/resnet50.yaml", "--depth", "0"]) == 0
    out = capsys.readouterr().out
    assert "layer3 (36 nodes)  stage" in out and "layer3.0" not in out
    assert main(["summary", "specs/resnet50.yaml", "--depth", "0", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [u["id"] for u in data["units"]] == ["conv1", "maxpool", "layer1", "layer2", "layer3", "layer4",
                                                "avgpool", "fc"]


def test_render_googlenet_svg_has_every_top_level_node(tmp_path):
    out = tmp_path / "googlenet.svg"
    assert main(["render", "specs/googlenet.yaml", "-o", str(out)]) == 0
    svg = ET.parse(out).getroot()  # a well-formed XML document
    assert svg.tag.endswith("svg")
    text = out.read_text()
    ids = {element.get("id") for element in svg.iter()}
    spec = compiler.load(SPECS / "googlenet.yaml")
    top = {n.group[0] if n.group else n.id for n in spec.nodes}
    for node_id in top:
        assert f"node-{node_id}" in ids, node_id
    assert "legend" in text and "480×14×14" in text  # a shape on an edge


def test_render_png_is_a_real_image(tmp_path):
    out = tmp_path / "resnet50.png"
    assert main(["render", "specs/resnet50.yaml", "-o", str(out), "--depth", "1", "--lr"]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 300 and height > 100


def test_render_expand_draws_clusters_and_dot_needs_no_binary(tmp_path):
    out = tmp_path / "r.dot"
    assert main(["render", "specs/resnet18.yaml", "-o", str(out), "--expand"]) == 0
    source = out.read_text()
    assert "subgraph cluster_layer1" in source and "subgraph cluster_layer1.0" in source.replace('"', "")
    assert main(["render", "specs/resnet18.yaml", "-o", str(tmp_path / "r.gif")]) == 2


def test_diff_resnet50_seresnet50(capsys):
    assert main(["diff", "specs/resnet50.yaml", "specs/seresnet50.yaml", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    added = [c for c in data["changes"] if c["kind"] == "added"]
    assert len(added) == 16 and all(c["op"] == "se" for c in added)
    assert data["params"]["delta"] == sum(c["params"] for c in data["changes"]) == 28_088_024 - 25_557_032
    assert main(["diff", "specs/resnet50.yaml", "specs/resnet101.yaml", "--depth", "0"]) == 0
    out = capsys.readouterr().out
    assert "~ layer3 [stage]" in out and "n: 6 -> 23" in out and "0 added, 0 removed, 1 changed" in out
