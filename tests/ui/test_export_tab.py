"""The Export tab's ONNX download: built with compiler.export, checked here in onnxruntime
against the compiled module; a clear message when the ONNX packages are missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "train"))
from train_support import TINY  # noqa: E402

import compiler  # noqa: E402
from ui import designer as d  # noqa: E402


def run_onnx(data: bytes, x):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    return session.run(None, {"image": x.numpy()})[0]


def test_app_builds_an_onnx_file_that_computes_the_spec(app):
    pytest.importorskip("onnx")
    if d.onnx_missing():
        pytest.skip(f"missing {d.onnx_missing()}")
    app.session_state["yaml"] = TINY
    app.run()
    app.number_input(key="var:width").set_value(4)  # the sidebar's override goes into the export
    app.run()
    app.button(key="onnx_build").click()
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    built = app.session_state["onnx_export"]
    assert built["name"] == "tiny"
    labels = [b.label for b in app.get("download_button")]
    assert any(label.startswith("Download ONNX (") for label in labels)
    import onnx

    proto = onnx.load_from_string(built["data"])
    shapes = sorted(tuple(t.dims) for t in proto.graph.initializer if len(t.dims) == 4)
    # width 4: the three 3x3 convs are 3->4, 4->8, 8->16 (TINY doubles the width twice)
    assert shapes == sorted([(4, 3, 3, 3), (8, 4, 3, 3), (16, 8, 3, 3)])
    got = run_onnx(built["data"], torch.randn(3, 3, 16, 16))  # batch 3: the batch is dynamic
    assert got.shape == (3, 6)
    # an edit makes the file stale: no download until it is built again
    app.number_input(key="var:width").set_value(8)
    app.run()
    assert not any(b.label.startswith("Download ONNX") for b in app.get("download_button"))
    assert any("build it again" in c.value for c in app.caption)


def test_onnx_with_trained_weights_computes_the_trained_model(tmp_path):
    if d.onnx_missing():
        pytest.skip(f"missing {d.onnx_missing()}")
    from safetensors.torch import load_file

    result = compiler.train(TINY, quiet=True, run_dir=str(tmp_path / "run"), epochs=1, train_size=64, val_size=32,
                            device="cpu")
    weights = Path(result.run_dir) / "model.safetensors"
    data = d.onnx_bytes(TINY, None, "<string>", weights)
    model = compiler.build(compiler.load(TINY)).eval()
    trained = load_file(str(weights))
    fresh = compiler.build(compiler.load(TINY), seed=123).state_dict()["linear1.linear.weight"]
    assert not torch.equal(fresh, trained["linear1.linear.weight"])  # what the file holds is not an init
    model.load_state_dict(trained)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        expected = model(x).numpy()
    assert abs(run_onnx(data, x) - expected).max() < 1e-4


def test_missing_onnx_packages_are_named_instead_of_crashing(app, monkeypatch):
    monkeypatch.setattr(d, "onnx_missing", lambda: ["onnxruntime"])
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("ONNX export needs onnxruntime" in i.value for i in app.info)
    assert not [b for b in app.button if b.key == "onnx_build"]


def test_onnx_missing_lists_what_cannot_be_imported(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    assert "onnxscript" in d.onnx_missing()
