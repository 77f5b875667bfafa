"""`./dev` gives every clone its own code over one shared set of heavy packages.

Two fresh clones of this repository are set up with `./dev run true` against the shared venv
this suite runs on (the same cache, so nothing is built or downloaded: seconds), and each
clone's `.venv`, its launchers and `./dev run` must resolve `compiler` to that clone's own
files and torch to the shared venv. The clones get this checkout's `./dev` and dependency
files (uncommitted changes are not in a clone), so their cache key is this suite's.

Where `compiler` comes from is read with importlib's find_spec, which does not run the
package: the clones hold the last commit, which need not import while others work on it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
ORIGINS = ("import importlib.util as u; "
           "print(u.find_spec('compiler').origin); print(u.find_spec('torch').origin)")


def _shared_venv() -> Path:
    """The shared venv this suite's torch comes from (…/venv-<hash>/lib/python3.11/site-packages/torch)."""
    venv = Path(torch.__file__).parents[4]
    if not (venv.name.startswith("venv-") and (venv / ".complete").is_file()):
        pytest.skip(f"not run from ./dev's venvs (torch is in {venv})")
    return venv


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{command}: {proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def clones(tmp_path_factory):
    """Clones A and B set up by `./dev run true`, A's .venv first made an old-layout link."""
    shared = _shared_venv()
    base = tmp_path_factory.mktemp("clones")
    env = {**os.environ, "BLOCKGRAPH_CACHE": str(shared.parent), "BLOCKGRAPH_PYTHON": sys._base_executable}
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        env.pop(name, None)
    where = _run([str(ROOT / "dev"), "where"], base, env).stdout.strip()
    assert where == str(shared), (f"this suite runs on {shared} but ./dev would use {where}: run ./dev "
                                  "(e.g. ./dev test) after changing the dependency files")
    out = {}
    for name in ("A", "B"):
        clone = base / name
        _run(["git", "clone", "-q", str(ROOT), str(clone)], base, env)
        for path in ("dev", "pyproject.toml", "requirements/lock.txt"):
            shutil.copy2(ROOT / path, clone / path)
        if name == "A":
            (clone / ".venv").symlink_to(shared)  # what the old layout made
        setup = _run([str(clone / "dev"), "run", "true"], base, env)
        out[name] = (clone.resolve(), setup)
    return out, shared, env, base


@pytest.mark.parametrize("name", ["A", "B"])
def test_each_clone_runs_its_own_code_with_the_shared_torch(clones, name):
    out, shared, env, base = clones
    clone, _ = out[name]
    venv = clone / ".venv"
    assert venv.is_dir() and not venv.is_symlink()
    mine, torch_file = str(clone / "compiler" / "__init__.py"), str(shared / "lib")
    # the clone's python, and `./dev run` (PATH) from a directory outside the clone
    direct = _run([str(venv / "bin" / "python"), "-c", ORIGINS], base, env).stdout.split()
    via_dev = _run([str(clone / "dev"), "run", "python", "-c", ORIGINS], base, env).stdout.split()
    for compiler_origin, torch_origin in (direct, via_dev):
        assert compiler_origin == mine
        assert torch_origin.startswith(torch_file) and torch_origin.endswith("torch/__init__.py")
    for script in ("blockgraph", "pytest", "streamlit", "torchrun"):  # launchers of the clone's python
        first = (venv / "bin" / script).read_text().splitlines()[0]
        assert first == f"#!{venv}/bin/python", (script, first)


def test_the_launchers_work(clones):
    out, shared, env, base = clones
    bin_dir = out["A"][0] / ".venv" / "bin"
    assert _run([str(bin_dir / "pytest"), "--version"], base, env).stdout.startswith("pytest ")
    assert "usage: torchrun" in _run([str(bin_dir / "torchrun"), "--help"], base, env).stdout
    assert _run([str(bin_dir / "streamlit"), "version"], base, env).stdout.startswith("Streamlit, version")


def test_the_old_link_is_replaced_and_nothing_heavy_is_built(clones):
    out, shared, env, base = clones
    messages = out["A"][1].stderr
    assert "replacing the .venv link (old layout)" in messages
    for _, setup in out.values():
        assert "building venv" not in setup.stderr  # torch was not installed again
    # the shared venv holds no clone's install
    assert not list(shared.glob("lib/python*/site-packages/blockgraph-*.dist-info"))
    assert not (shared / "bin" / "blockgraph").exists()


def test_a_second_run_only_checks(clones):
    out, shared, env, base = clones
    clone, _ = out["B"]
    again = _run([str(clone / "dev"), "run", "true"], base, env)
    assert again.stderr == ""  # no "[dev] ..." line: nothing was built or installed
