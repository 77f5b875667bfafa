"""Shared fixtures: the repository root and the specs shipped in specs/.

A test that takes a `spec_path` argument runs once per specs/*.yaml (ids are file names);
the parametrisation is module-scoped, so module-scoped fixtures built from it (a model
per spec) are created once per spec.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATHS = sorted((ROOT / "specs").glob("*.yaml"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def spec_paths() -> list[Path]:
    assert SPEC_PATHS, f"no specs in {ROOT / 'specs'}"
    return list(SPEC_PATHS)


def pytest_generate_tests(metafunc):
    if "spec_path" in metafunc.fixturenames:
        metafunc.parametrize("spec_path", SPEC_PATHS, ids=[p.name for p in SPEC_PATHS], scope="module")
