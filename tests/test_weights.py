"""compiler.import_weights: a reference model's weights onto the compiled spec, paired by
structure (never by name), then the same outputs in eval mode and the same gradients in train
mode, for the zoo specs that name torchvision and timm references. Also the refusals: shapes
that disagree (named), tensors left over (listed), files that are not plain tensors.

The references are randomly initialised (seeded; no downloads) with non-trivial batch-norm
statistics, so eps, running statistics and pairing order all show in the outputs.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

import compiler
from compiler.weights import WeightImportError, construct, save_state_dict
from support import randomise_batchnorm

ROOT = Path(__file__).resolve().parents[1]

# spec -> (input size for the train-mode gradient check; eval runs at the spec's own size)
MODELS = {"resnet18": 64, "resnet50": 64, "vgg16_bn": 64, "densenet121": 64, "googlenet": 64,
          "resnext50_32x4d": 64, "seresnet50": 64, "dpn68": 64, "inception_resnet_v2": 75}


def _reference(spec) -> torch.nn.Module:
    torch.manual_seed(0)
    model = construct(spec.reference)
    randomise_batchnorm(model, torch.Generator().manual_seed(1))
    return model


# a few pairs per model, read off the two implementations' source code
CORRESPONDING = {
    "resnet50": {"conv1.conv.weight": "conv1.weight", "conv1.norm.running_var": "bn1.running_var",
                 "layer2.0.shortcut.conv.weight": "layer2.0.downsample.0.weight", "fc.linear.weight": "fc.weight"},
    "densenet121": {"conv0.conv.weight": "features.conv0.weight", "norm5.running_mean": "features.norm5.running_mean",
                    "classifier.linear.weight": "classifier.weight"},
}


@pytest.fixture(scope="module", params=list(MODELS))
def imported(request):
    """(name, spec, ours after import, reference, report)."""
    name = request.param
    if compiler.load(ROOT / "specs" / f"{name}.yaml").reference.startswith("timm"):
        pytest.importorskip("timm")
    spec = compiler.load(ROOT / "specs" / f"{name}.yaml")
    ours = compiler.build(spec, seed=123)  # a different seed: every value must come from the import
    theirs = _reference(spec)
    report = compiler.import_weights(ours, theirs)
    return name, spec, ours, theirs, report


def test_every_tensor_is_paired(imported):
    name, _, ours, theirs, report = imported
    assert report.loaded and report.complete, str(report)
    assert len(report.pairs) == len(ours.state_dict()) == len(theirs.state_dict())
    assert len({a for a, _ in report.pairs}) == len({b for _, b in report.pairs}) == len(report.pairs)
    sd_o, sd_t = ours.state_dict(), theirs.state_dict()
    for mine, source in report.pairs:
        assert torch.equal(sd_o[mine], sd_t[source]), (name, mine, source)
    pairs = dict(report.pairs)
    for mine, source in CORRESPONDING.get(name, {}).items():
        assert pairs[mine] == source, (name, mine)


def test_eval_outputs_equal_the_reference(imported):
    name, spec, ours, theirs, _ = imported
    x = torch.randn(1, *spec.inputs["image"], generator=torch.Generator().manual_seed(2))
    ours.eval()
    theirs.eval()
    with torch.inference_mode():
        expected, got = theirs(x), ours(x)
    assert got.shape == expected.shape == (1, 1000)
    scale = expected.abs().max().item()
    assert scale > 0 and expected.std() > 0
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5 * scale)


def test_train_mode_gradients_equal_the_reference(imported):
    name, _, ours, theirs, report = imported
    size = MODELS[name]
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(3))
    weights = torch.linspace(-1, 1, 2000).view(2, 1000)
    outputs = []
    for model in (ours, theirs):
        model.train()
        model.zero_grad(set_to_none=True)
        torch.manual_seed(4)  # the same dropout masks on both sides
        out = model(x)
        (out * weights).sum().backward()
        outputs.append(out.detach())
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-5 * outputs[1].abs().max().item())
    params_o, params_t = dict(ours.named_parameters()), dict(theirs.named_parameters())
    compared = 0
    for mine, source in report.pairs:
        if mine in params_o:
            g_o, g_t = params_o[mine].grad, params_t[source].grad
            assert g_t is not None and g_o is not None, (mine, source)
            # max-abs difference within 1e-4 of the largest gradient (assert_close is slow on
            # VGG's 100M-element classifier)
            scale = g_t.abs().max().item()
            assert g_o.shape == g_t.shape and (g_o - g_t).abs().max().item() <= 1e-4 * scale + 1e-12, (mine, source)
            compared += 1
    assert compared == len(params_t)
    for model in (ours, theirs):  # free the gradients of the module-scoped models
        model.zero_grad(set_to_none=True)


# -- pairing by structure, not by name ----------------------------------------------------------------




class _HeadFirst(torch.nn.Module):
    """A classifier whose head is registered before its body: registration order misleads."""

    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(8, 8)
        self.body = torch.nn.Linear(8, 8)

    def forward(self, x):
        return self.head(torch.relu(self.body(x)))


TWO_LINEAR = """
blockgraph: 1
name: two_linear
inputs: {x: [8]}
nodes:
  - {id: first, op: linear, out: 8, act: relu}
  - {id: second, op: linear, out: 8}
"""


def test_execution_order_beats_registration_order():
    theirs = _HeadFirst()
    ours = compiler.build(TWO_LINEAR, seed=0)
    report = compiler.import_weights(ours, theirs, inputs=[(2, 8)])
    assert report.order == "execution"
    assert dict(report.pairs)["first.linear.weight"] == "body.weight"
    x = torch.randn(3, 8)
    torch.testing.assert_close(ours(x), theirs(x))


# -- refusals and reports --------------------------------------------------------------------------

def test_shape_mismatch_is_refused_with_the_tensor_names():
    ours = compiler.build(ROOT / "specs" / "resnet18.yaml", vars={"classes": 10}, seed=0)
    before = {k: v.clone() for k, v in ours.state_dict().items()}
    with pytest.raises(WeightImportError) as info:
        compiler.import_weights(ours, "torchvision:resnet18")
    message = str(info.value)
    assert "shapes disagree" in message
    assert "fc.linear.weight [10, 512] vs fc.weight [1000, 512]" in message
    assert "fc.linear.bias [10] vs fc.bias [1000]" in message
    assert info.value.report.mismatched and not info.value.report.loaded
    assert all(torch.equal(v, before[k]) for k, v in ours.state_dict().items()), "a refused import copied tensors"


def test_tensors_left_unmatched_are_reported():
    """torchvision's GoogLeNet keeps two auxiliary heads that googlenet.yaml leaves out."""
    spec = compiler.load(ROOT / "specs" / "googlenet.yaml")
    ours = compiler.build(spec, seed=0)
    torch.manual_seed(0)
    theirs = construct("torchvision:googlenet(aux_logits=True, init_weights=True)")
    with pytest.raises(WeightImportError, match="left unmatched") as info:
        compiler.import_weights(ours, theirs)
    assert "aux1.fc2.weight" in str(info.value)
    report = compiler.import_weights(ours, theirs, strict=False)
    aux = [n for n in theirs.state_dict() if n.startswith(("aux1.", "aux2."))]
    assert sorted(report.unexpected) == sorted(aux) and len(aux) == 20
    assert not report.missing and report.loaded
    theirs.eval(), ours.eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


# -- files and state_dicts --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def resnet18_reference():
    return _reference(compiler.load(ROOT / "specs" / "resnet18.yaml"))


def _same_outputs(ours, theirs, size=64):
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(9))
    ours.eval(), theirs.eval()
    with torch.inference_mode():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("form", ["state_dict", "pt", "safetensors", "checkpoint"])
def test_state_dict_sources(form, resnet18_reference, tmp_path):
    """A bare state_dict has no execution order: its names are the spec's reference's, so it
    is ordered by that model (safetensors files even sort their entries by name)."""
    from safetensors.torch import save_file

    state = resnet18_reference.state_dict()
    source = {"state_dict": state, "epoch": 3} if form == "checkpoint" else state
    if form in ("pt", "checkpoint"):
        torch.save(source, tmp_path / "w.pt")
        source = tmp_path / "w.pt"
    elif form == "safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "w.safetensors")
        source = str(tmp_path / "w.safetensors")
    ours = compiler.build(ROOT / "specs" / "resnet18.yaml", seed=5)
    report = compiler.import_weights(ours, source)
    assert report.complete and len(report.pairs) == 122
    _same_outputs(ours, resnet18_reference)


def test_state_dict_of_an_unknown_model_is_paired_in_its_stored_order(resnet18_reference):
    renamed = {f"net.{i}": v for i, v in enumerate(resnet18_reference.state_dict().values())}
    ours = compiler.build(ROOT / "specs" / "resnet18.yaml", seed=5)
    report = compiler.import_weights(ours, renamed)
    assert report.complete and report.pairs[0] == ("conv1.conv.weight", "net.0")
    _same_outputs(ours, resnet18_reference)


def test_own_safetensors_round_trip_by_name(resnet18_reference, tmp_path):
    ours = compiler.build(ROOT / "specs" / "resnet18.yaml", seed=5)
    compiler.import_weights(ours, resnet18_reference)
    save_state_dict(ours, tmp_path / "mine.safetensors")
    again = compiler.build(ROOT / "specs" / "resnet18.yaml", seed=6)
    report = compiler.import_weights(again, tmp_path / "mine.safetensors")
    assert report.order == "name" and report.complete
    _same_outputs(again, resnet18_reference)


class _Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"w": _Payload()}, protocol=2))
    ours = compiler.build(ROOT / "specs" / "resnet18.yaml", seed=0, device="meta")
    with pytest.raises(WeightImportError, match="weights_only"):
        compiler.import_weights(ours, path)


def test_unknown_source_strings_are_refused():
    ours = compiler.build(TWO_LINEAR, seed=0)
    with pytest.raises(WeightImportError, match="unknown weight source"):
        compiler.import_weights(ours, "caffe:alexnet")
    with pytest.raises(WeightImportError, match="no model"):
        compiler.import_weights(ours, "torchvision:nosuchnet")


# -- the command ---------------------------------------------------------------------------------------

def test_cli_import_weights(resnet18_reference, tmp_path, capsys):
    from compiler.cli import main

    torch.save(resnet18_reference.state_dict(), tmp_path / "ref.pt")
    out = tmp_path / "w.safetensors"
    assert main(["import-weights", str(ROOT / "specs" / "resnet18.yaml"), "--from", str(tmp_path / "ref.pt"),
                 "-o", str(out)]) == 0
    assert "122 tensors paired" in capsys.readouterr().out
    ours = compiler.build(ROOT / "specs" / "resnet18.yaml", seed=7)
    from safetensors.torch import load_file

    ours.load_state_dict(load_file(str(out)))  # our own names: a plain load_state_dict works
    _same_outputs(ours, resnet18_reference)


def test_cli_import_weights_mismatch_exits_1_without_traceback(tmp_path, capsys):
    from compiler.cli import main

    out = tmp_path / "w.safetensors"
    status = main(["import-weights", str(ROOT / "specs" / "resnet18.yaml"), "-D", "classes=10",
                   "--from", "torchvision:resnet18", "-o", str(out)])
    err = capsys.readouterr().err
    assert status == 1 and not out.exists()
    assert "fc.linear.weight [10, 512] vs fc.weight [1000, 512]" in err
    assert "Traceback" not in err
