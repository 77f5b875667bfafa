"""`blockgraph --plugin MOD ui` hands the plugin modules to the designer's own interpreter
(streamlit, exec'd in its place) through $BLOCKGRAPH_PLUGINS, next to any already set there."""

from __future__ import annotations

import os

from compiler.cli import main


def test_ui_passes_plugins_to_the_app(monkeypatch, tmp_path):
    seen = {}

    def fake_execve(path, command, env):
        seen["command"], seen["env"] = command, env

    plugin = tmp_path / "my_plugin_mod.py"
    plugin.write_text("")  # an empty module is a valid plugin (it registers nothing)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("BLOCKGRAPH_PLUGINS", "already_there")
    monkeypatch.setattr(os, "execve", fake_execve)
    monkeypatch.setattr("compiler.plugins.load_from_environment", lambda: {})
    assert main(["--plugin", "my_plugin_mod", "ui", "--port", "8765"]) == 0
    assert seen["env"]["BLOCKGRAPH_PLUGINS"] == "already_there,my_plugin_mod"
    command = seen["command"]
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    assert command[command.index("--server.port") + 1] == "8765"
    assert command[-1].endswith("specs/default.yaml")
