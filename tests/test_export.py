"""compiler.export / `blockgraph export`: each format reloads (by its own runtime, not by
blockgraph) with outputs within 1e-4 of the compiled module at two batch sizes; the standalone
Python file runs in a fresh interpreter that cannot import blockgraph; the ONNX file of every
classification spec in specs/ runs in onnxruntime (the small specs here, the big ones under the
`slow` marker; benchmarks/onnx_all.py checks them all in one command).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

import compiler
from compiler.export import ExportError
from support import randomise_batchnorm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from onnx_all import classification_specs  # noqa: E402

SUFFIX = {"onnx": ".onnx", "torchscript": ".pt", "exported": ".pt2", "python": ".py"}


def _model(name: str) -> torch.nn.Module:
    model = compiler.build(ROOT / "specs" / f"{name}.yaml", seed=0)
    randomise_batchnorm(model, torch.Generator().manual_seed(1))
    return model.eval()


def _input(spec_name: str, batch: int, seed: int) -> torch.Tensor:
    shape = compiler.load(ROOT / "specs" / f"{spec_name}.yaml").inputs["image"]
    return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed))


def _reload(path: Path, fmt: str, model: torch.nn.Module):
    """The written file, loaded by its own runtime."""
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0])
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.jit.load(str(path))
    if fmt == "exported":
        return torch.export.load(str(path)).module()
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # our own generated file
    loaded = namespace[namespace["MODEL"]]()
    loaded.load_state_dict(model.state_dict())  # strict: the same keys
    return loaded.eval()


def _close(got: torch.Tensor, expected: torch.Tensor, tol: float = 1e-4) -> None:
    assert got.shape == expected.shape
    scale = expected.abs().max().item()
    assert scale > 0
    assert (got - expected).abs().max().item() <= tol * scale, (got - expected).abs().max().item() / scale


ROUND_TRIP = [(fmt, spec) for fmt in SUFFIX for spec in ("resnet20_cifar", "unet_small_shapes")]


@pytest.mark.parametrize("fmt,name", ROUND_TRIP, ids=[f"{f}-{n}" for f, n in ROUND_TRIP])
def test_round_trip_at_two_batch_sizes(fmt, name, tmp_path):
    model = _model(name)
    path = compiler.export(model, fmt, tmp_path / f"{name}{SUFFIX[fmt]}", verify=False)
    assert path.is_file() and path.stat().st_size > 0
    loaded = _reload(path, fmt, model)
    for batch, seed in ((1, 2), (5, 3)):  # 5: not the traced example batch (2)
        x = _input(name, batch, seed)
        with torch.inference_mode():
            expected = model(x)
            got = loaded(x)
        _close(got, expected)


def test_weights_are_loaded_before_export(tmp_path):
    from compiler.weights import save_state_dict

    source = _model("resnet20_cifar")
    save_state_dict(source, tmp_path / "w.safetensors")
    path = compiler.export(ROOT / "specs" / "resnet20_cifar.yaml", "exported", tmp_path / "m.pt2",
                           weights=tmp_path / "w.safetensors")
    x = _input("resnet20_cifar", 2, 4)
    with torch.inference_mode():
        _close(torch.export.load(str(path)).module()(x), source(x))


def test_exported_program_has_a_dynamic_batch(tmp_path):
    path = compiler.export(_model("resnet20_cifar"), "exported", tmp_path / "m.pt2")
    program = torch.export.load(str(path))
    shape = program.graph_module.graph.find_nodes(op="placeholder")[-1].meta["val"].shape
    assert not isinstance(shape[0], int) and tuple(shape[1:]) == (3, 32, 32)


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ExportError, match="unknown format"):
        compiler.export(ROOT / "specs" / "default.yaml", "tflite", tmp_path / "m.tflite")


# -- the standalone Python file ----------------------------------------------------------------

STANDALONE = textwrap.dedent("""
    import sys
    sys.path.append({site!r})  # torch's site-packages only: no .pth files, no editable blockgraph
    try:
        import compiler
    except ImportError:
        pass
    else:
        raise SystemExit("blockgraph is importable here: " + compiler.__file__)
    import importlib.util
    import torch
    spec = importlib.util.spec_from_file_location("model", "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = getattr(module, module.MODEL)()
    net.load_state_dict(torch.load("weights.pt", weights_only=True))
    net.eval()
    inputs = torch.load("inputs.pt", weights_only=True)
    with torch.inference_mode():
        torch.save([net(x) for x in inputs], "outputs.pt")
    print("blockgraph modules loaded:", sorted(m for m in sys.modules if m.split(".")[0] in ("compiler", "ui")))
""")


@pytest.mark.parametrize("name", ["resnet50", "densenet121"])
def test_standalone_python_runs_without_blockgraph(name, tmp_path):
    model = _model(name)
    compiler.export(model, "python", tmp_path / "model.py", verify=False)
    text = (tmp_path / "model.py").read_text()
    assert "compiler" not in text and "blockgraph_" not in text
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    inputs = [_input(name, 1, 5), _input(name, 2, 6)]
    torch.save(inputs, tmp_path / "inputs.pt")
    (tmp_path / "run.py").write_text(STANDALONE.format(site=str(Path(torch.__file__).resolve().parents[1])))
    result = subprocess.run([sys.executable, "-I", "-S", "run.py"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "blockgraph modules loaded: []" in result.stdout
    outputs = torch.load(tmp_path / "outputs.pt", weights_only=True)
    with torch.inference_mode():
        for x, got in zip(inputs, outputs):
            _close(got, model(x))


def test_the_isolated_interpreter_really_cannot_import_blockgraph(tmp_path):
    """The check above means something: the same interpreter without -I -S imports it."""
    code = "import compiler, sys; print(compiler.__file__)"
    plain = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0 and "compiler" in plain.stdout
    isolated = subprocess.run([sys.executable, "-I", "-S", "-c", code], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
    assert isolated.returncode != 0 and "No module named 'compiler'" in isolated.stderr


def test_standalone_file_rebuilds_layers_from_their_arguments(tmp_path):
    compiler.export(_model("densenet_bc_100_cifar"), "python", tmp_path / "m.py", verify=False)
    text = (tmp_path / "m.py").read_text()
    assert "nn.BatchNorm2d(num_features=" in text and "nn.Conv2d(in_channels=" in text
    assert "def forward(self, image):" in text


# -- ONNX of every classification spec ----------------------------------------------------------------

CLASSIFIERS = classification_specs()
# the dynamo exporter takes 1.5-4 s (export + check) on these and 5-22 s on the others on the
# 2-core CI machine, about 5 minutes for all 28: the others run under the `slow` marker, and
# benchmarks/onnx_all.py checks them all in one command (docs/export.md has the table)
SMALL = {"default", "nin_cifar10", "resnet20_cifar", "vgg11_cifar", "resnet18"}


def test_classification_specs_are_found():
    assert {"resnet50", "vgg16_bn", "inception_resnet_v2", "resnet20_cifar"} <= set(CLASSIFIERS)
    assert "yolov1" not in CLASSIFIERS and "unet_small_shapes" not in CLASSIFIERS
    assert SMALL <= set(CLASSIFIERS)


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n in SMALL else pytest.mark.slow)
                                  for n in CLASSIFIERS])
def test_onnx_of_every_classification_spec_runs_in_onnxruntime(name, tmp_path):
    from onnx_all import check_one

    _, _, worst = check_one(name, tmp_path)
    assert worst <= 1e-4


# -- the command -----------------------------------------------------------------------------------

def test_cli_export(tmp_path, capsys):
    from compiler.cli import main

    out = tmp_path / "m.pt2"
    assert main(["export", str(ROOT / "specs" / "resnet20_cifar.yaml"), "--format", "exported", "-o", str(out)]) == 0
    assert "dynamic batch" in capsys.readouterr().out and out.is_file()


def test_cli_export_bad_weights_exit_1(tmp_path, capsys):
    from compiler.cli import main

    status = main(["export", str(ROOT / "specs" / "resnet20_cifar.yaml"), "--format", "onnx", "-o",
                   str(tmp_path / "m.onnx"), "--weights", str(tmp_path / "none.safetensors")])
    err = capsys.readouterr().err
    assert status == 1 and "no such weights file" in err and "Traceback" not in err
