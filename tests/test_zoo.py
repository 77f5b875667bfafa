"""The model zoo in specs/: parameter counts, numerical parity with torchvision, MACs and
memory-free meta builds.

Every spec's `reference:` names an implementation; the test constructs it (torchvision or
timm, on the meta device) and compares parameter counts; the counts are also checked against
tests/zoo_reference.md, the reference table typed in once (torchvision's and timm's counts), so
an upgrade of torchvision or timm that changed a reference model would show as well.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import compiler
from support import assert_same_outputs, copy_by_order, randomise_batchnorm

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATHS = sorted((ROOT / "specs").glob("*.yaml"))


# -- the reference table ----------------------------------------------------------------------

REFERENCE_MD = Path(__file__).resolve().parent / "zoo_reference.md"


def _table_rows(text: str) -> list[dict[str, str]]:
    """The markdown table whose header names `reference implementation` and `parameters`."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if "reference implementation" in cells and "parameters" in cells:
            header = cells
            rows = []
            for row in lines[i + 2:]:  # skip the | --- | separator
                if not row.strip().startswith("|"):
                    break
                values = [c.strip() for c in row.strip().strip("|").split("|")]
                rows.append(dict(zip(header, values)))
            return rows
    raise AssertionError("no table with 'reference implementation' and 'parameters' columns")


@pytest.fixture(scope="module")
def reference_text() -> str:
    return REFERENCE_MD.read_text()


@pytest.fixture(scope="module")
def reference_params(reference_text) -> dict[str, int]:
    """reference implementation -> trainable parameter count."""
    rows = _table_rows(reference_text)
    table = {r["reference implementation"]: int(r["parameters"].replace(",", "")) for r in rows}
    assert len(table) >= 10, table
    return table


@pytest.fixture(scope="module")
def reference_arch(reference_text) -> dict[str, str]:
    """reference implementation -> architecture name (VGG-16 ...)."""
    return {r["reference implementation"]: r["architecture"] for r in _table_rows(reference_text)}


@pytest.fixture(scope="module")
def reference_gmacs(reference_text) -> dict[str, float]:
    """architecture name -> GMACs, from the "Compute, from torchvision's ..." paragraph."""
    match = re.search(r"^Compute\b(.*?)(?:\n\s*\n|\Z)", reference_text, re.S | re.M)
    assert match, "no 'Compute' paragraph in zoo_reference.md"
    body = match.group(1).split(":", 1)[1]  # after "... of one 224x224 image):"
    pairs = re.findall(r"([A-Za-z][A-Za-z0-9\-]*)\s+(\d+(?:\.\d+)?)", body)
    table = {name: float(value) for name, value in pairs}
    assert "VGG-16" in table, table
    return table


def _references() -> list[tuple[str, str]]:
    """(file name, reference) for every spec that names a reference (after `extends:`)."""
    out = []
    for path in SPEC_PATHS:
        try:
            reference = compiler.load(path).reference
        except compiler.SpecError:  # still test it: the test will show the load error
            m = re.search(r"^reference:\s*([^\s#]+)", path.read_text(), re.M)
            reference = m.group(1).strip("'\"") if m and m.group(1) not in ("null", "~") else None
        if reference:
            out.append((path.name, reference))
    return out


REFERENCED = _references()


def test_some_specs_name_a_reference():
    assert {"vgg11.yaml", "vgg16.yaml", "vgg16_bn.yaml"} <= {name for name, _ in REFERENCED}


def construct_reference(reference: str) -> torch.nn.Module:
    """`torchvision.models.NAME(k=v, ...)` or `timm NAME`, built on the meta device."""
    m = re.fullmatch(r"torchvision\.models\.(\w+)(?:\((.*)\))?", reference)
    with torch.device("meta"):
        if m:
            import torchvision

            kwargs = {}
            for part in filter(None, (m.group(2) or "").split(",")):
                key, value = (x.strip() for x in part.split("="))
                kwargs[key] = {"True": True, "False": False}.get(value, value)
            return getattr(torchvision.models, m.group(1))(weights=None, **kwargs)
        m = re.fullmatch(r"timm (\w+)", reference)
        assert m, f"unknown reference form {reference!r}"
        timm = pytest.importorskip("timm")
        return timm.create_model(m.group(1), pretrained=False)


@pytest.mark.parametrize("name,reference", REFERENCED, ids=[n for n, _ in REFERENCED])
def test_parameter_count_equals_the_constructed_reference(name, reference):
    expected = sum(p.numel() for p in construct_reference(reference).parameters())
    spec = compiler.load(ROOT / "specs" / name)
    analysis = compiler.analyze(spec)
    built = sum(p.numel() for p in compiler.build(spec, device="meta").parameters())
    assert analysis.params == built == expected, f"{name}: {analysis.params:,} / {built:,} vs {expected:,}"


@pytest.mark.parametrize("name,reference", REFERENCED, ids=[n for n, _ in REFERENCED])
def test_parameter_count_matches_reference_table(name, reference, reference_params):
    assert reference in reference_params, (
        f"{name} names reference {reference!r}, which is not a row of zoo_reference.md")
    expected = reference_params[reference]
    spec = compiler.load(ROOT / "specs" / name)
    assert spec.reference == reference
    analysis = compiler.analyze(spec)
    model = compiler.build(spec, device="meta")
    built = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert analysis.params == expected, f"{name}: analysis says {analysis.params:,}, table {expected:,}"
    assert built == expected, f"{name}: built module has {built:,}, table {expected:,}"
    assert trainable == expected


# -- MACs -------------------------------------------------------------------------------------

def test_vgg16_macs_match_torchvision_docs(reference_arch, reference_gmacs):
    spec = compiler.load(ROOT / "specs" / "vgg16.yaml")
    arch = reference_arch[spec.reference]
    expected = reference_gmacs[arch] * 1e9
    macs = compiler.analyze(spec).macs
    assert abs(macs - expected) <= 0.01 * expected, f"{macs / 1e9:.3f} GMACs vs {expected / 1e9:.2f}"


# -- numerical parity with torchvision --------------------------------------------------------

PARITY = [("vgg16", "vgg16", {}), ("vgg16_bn", "vgg16_bn", {}), ("vgg11", "vgg11", {}),
          ("resnet18", "resnet18", {}), ("resnet50", "resnet50", {}), ("resnext50_32x4d", "resnext50_32x4d", {}),
          ("densenet121", "densenet121", {}),
          ("googlenet", "googlenet", {"aux_logits": False, "init_weights": True})]


@pytest.mark.parametrize("name,factory,kwargs", PARITY, ids=[p[0] for p in PARITY])
def test_matches_torchvision_numerically(name, factory, kwargs):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, factory)(weights=None, **kwargs)
    gen = torch.Generator().manual_seed(1)
    randomised = randomise_batchnorm(theirs, gen)
    if name.endswith("_bn"):
        assert randomised == 13
    ours = compiler.build(ROOT / "specs" / f"{name}.yaml", seed=0)
    copy_by_order(ours, theirs)
    assert_same_outputs(ours, theirs, torch.randn(2, 3, 224, 224, generator=gen), rtol=1e-5)


# -- the meta device ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["vgg16", "vgg16_bn"])
def test_meta_build_puts_everything_on_meta(name):
    model = compiler.build(ROOT / "specs" / f"{name}.yaml", device="meta")
    tensors = list(model.parameters()) + list(model.buffers())
    assert tensors
    assert all(t.device.type == "meta" for t in tensors), {t.device for t in tensors}
    if name.endswith("_bn"):
        assert any(True for _ in model.buffers())


META_RSS_SCRIPT = r"""
import json, resource, sys
import torch
import compiler

def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()

def peak_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux

# warm up every import and code path on a small spec so only the VGG build is measured
compiler.build(sys.argv[2], device="meta")
rss0, peak0 = rss_bytes(), peak_bytes()
model = compiler.build(sys.argv[1], device="meta")
rss1, peak1 = rss_bytes(), peak_bytes()
params = sum(p.numel() for p in model.parameters())
print(json.dumps({"rss0": rss0, "rss1": rss1, "peak0": peak0, "peak1": peak1, "params": params}))
"""


def test_meta_build_of_vgg16_allocates_no_weights():
    """138M float32 parameters are 553 MB; a meta build must stay far below that."""
    proc = subprocess.run(
        [sys.executable, "-c", META_RSS_SCRIPT, str(ROOT / "specs" / "vgg16.yaml"),
         str(ROOT / "specs" / "default.yaml")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["params"] > 100_000_000  # the real VGG-16 was built, just on meta
    limit = 50 * 2**20
    rss_delta = result["rss1"] - result["rss0"]
    peak_delta = result["peak1"] - max(result["peak0"], result["rss0"])
    assert rss_delta < limit, f"RSS grew by {rss_delta / 2**20:.1f} MiB"
    assert peak_delta < limit, f"peak RSS grew by {peak_delta / 2**20:.1f} MiB"
