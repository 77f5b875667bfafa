"""Where the designer's files are and how it writes them: the repository, the zoo (specs/),
the spec named on the command line, and Save (atomic, and only inside the workspace)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
DEFAULT_SPEC = SPECS / "default.yaml"


def zoo() -> list[str]:
    """File names of the specs shipped in specs/ (default.yaml first)."""
    names = sorted(p.name for p in SPECS.glob("*.yaml"))
    return sorted(names, key=lambda n: n != "default.yaml")


def spec_from_argv(argv: list[str]) -> Path:
    """The spec named after `--` on the streamlit command line (`streamlit run ui/app.py --
    SPEC`), else specs/default.yaml. Only an existing *.yaml / *.yml file counts, so the
    arguments of a test runner that imports the app are ignored."""
    for arg in argv:
        if arg.endswith((".yaml", ".yml")) and os.path.isfile(arg):
            return Path(arg).resolve()
    return DEFAULT_SPEC


def outside_workspace(target: Path, roots) -> bool:
    """True when the resolved `target` lies in none of `roots` (the repository, the working
    folder): the designer's Save must not write wherever a typed path (``../..``) points."""
    target = Path(target).resolve()
    return not any(target.is_relative_to(Path(root).resolve()) for root in roots)


def save_roots(repository: Path) -> tuple[Path, ...]:
    """Where Save may write: the repository, the working folder and the system's temporary
    folder (scratch space the user owns anyway); never a typed path that climbs out of them."""
    return (Path(repository), Path.cwd(), Path(tempfile.gettempdir()))


def save_text(path: str, text: str) -> Path:
    """Write the text atomically (a temporary file next to it, then a rename)."""
    target = Path(path).expanduser()
    if target.suffix not in (".yaml", ".yml"):
        raise ValueError("the file name must end in .yaml or .yml")
    if not target.parent.is_dir():
        raise ValueError(f"no such folder: {target.parent}")
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(target)
    return target
