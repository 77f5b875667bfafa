"""docs/architecture.md maps every module of compiler/ and ui/, and names no file that is gone.

A module counts as mapped when the page names it in backticks: by its path (`compiler/train/loop.py`,
`train/loop.py`), its file name (`loop.py`) or, for a module of a package, its bare name as the
package's paragraph lists them (`caching`). The blocks of compiler/blocks/ are mapped by
docs/blocks.md (generated from the registry) instead, except the package's own machinery.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
BLOCK_MACHINERY = {"__init__.py", "base.py", "registry.py", "common.py"}


def _modules() -> list[Path]:
    found = []
    for package in ("compiler", "ui"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if relative.parts[:2] == ("compiler", "blocks") and path.name not in BLOCK_MACHINERY:
                continue
            found.append(relative)
    return found


def _named() -> set[str]:
    return set(re.findall(r"`([^`\s<>]+)`", DOC.read_text()))


def _spellings(relative: Path) -> set[str]:
    parts = relative.parts
    names = {relative.as_posix(), "/".join(parts[1:])}
    if relative.name == "__init__.py":
        package = "/".join(parts[:-1])
        names |= {package, package + "/", "/".join(parts[1:-1]) + "/", "/".join(parts[1:-1]),
                  parts[-2] + "/", parts[-2] + "/__init__.py"}
        names.discard("/")
        names.discard("")
    else:
        names |= {relative.name, relative.stem, "/".join(parts[1:-1] + (relative.stem,))}
    return names


def test_every_module_is_on_the_architecture_page():
    named = _named()
    missing = [m.as_posix() for m in _modules() if not (_spellings(m) & named)]
    assert not missing, f"docs/architecture.md does not mention: {', '.join(missing)}"


def test_the_page_names_no_file_that_is_gone():
    files = {p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*.py") if ".venv" not in p.parts}
    names = {Path(f).name for f in files}
    gone = []
    for name in _named():
        if not name.endswith(".py"):
            continue
        if "/" in name:
            if not any(f == name or f.endswith("/" + name) for f in files):
                gone.append(name)
        elif name not in names and not name.startswith("test_"):
            gone.append(name)
    # The "Adding a block" walk-through creates compiler/blocks/l2norm.py: an example, not a module.
    gone = [g for g in gone if g != "l2norm.py"]
    assert not gone, f"docs/architecture.md names files that do not exist: {', '.join(sorted(gone))}"
