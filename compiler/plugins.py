"""Custom Python blocks without editing blockgraph.

A plugin is an importable module that defines `compiler.Block` subclasses and registers them
with `@compiler.register`. Because importing runs code, plugins are imported only when the
user names them. The `blockgraph` command imports `--plugin my_blocks` modules, those in
`$BLOCKGRAPH_PLUGINS=my_blocks` and those installed packages declare under the
`blockgraph.blocks` entry-point group (an installed package is code the user chose to
install). The Python API imports nothing by itself: call `compiler.load_plugins(["my_blocks"])`
(or `load_from_environment()` / `load_entry_points()`). A spec may list the plugins it needs
under `plugins:`; that list is only checked, never imported, so opening a spec from someone
else cannot run their code.

A plugin block may leave out `out_shape`: its shape (and MACs) then come from a trial run of
its module on PyTorch's meta device, and summaries mark that shape as measured.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

from .blocks.registry import REGISTRY

ENTRY_POINT_GROUP = "blockgraph.blocks"
_loaded: dict[str, list[str]] = {}


class PluginError(RuntimeError):
    """A plugin could not be imported."""


def load_plugins(names: list[str] | tuple[str, ...]) -> dict[str, list[str]]:
    """Import each named module; return {module: ops it registered}."""
    result = {}
    for name in names:
        name = name.strip()
        if not name:
            continue
        if name in _loaded:
            result[name] = _loaded[name]
            continue
        before = set(REGISTRY)
        try:
            importlib.import_module(name)
        except Exception as exc:  # the plugin's own error, shown without a traceback by the CLI
            raise PluginError(f"cannot import plugin {name!r}: {type(exc).__name__}: {exc}") from exc
        added = sorted(set(REGISTRY) - before)
        _loaded[name] = result[name] = added
    return result


def load_entry_points() -> dict[str, list[str]]:
    """Import the plugins installed packages declare under the `blockgraph.blocks` group."""
    return load_plugins([ep.value.split(":")[0] for ep in entry_points(group=ENTRY_POINT_GROUP)])


def load_from_environment() -> dict[str, list[str]]:
    """Import the plugins named in $BLOCKGRAPH_PLUGINS (comma-separated)."""
    return load_plugins(os.environ.get("BLOCKGRAPH_PLUGINS", "").split(","))


def loaded() -> dict[str, list[str]]:
    return dict(_loaded)
