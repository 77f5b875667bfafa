"""`blockgraph ui` starts Streamlit on this machine only, with XSRF protection and a small
upload cap, unless the user asks for another address (see SECURITY.md)."""

from __future__ import annotations

import os
from pathlib import Path

from compiler.cli import main


def _command(monkeypatch, argv):
    seen = {}

    def fake_execve(path, command, env):
        seen["command"] = command

    monkeypatch.setattr(os, "execve", fake_execve)
    monkeypatch.setattr("compiler.plugins.load_from_environment", lambda: {})
    assert main(argv) == 0
    return seen["command"]


def _option(command, name):
    return command[command.index(name) + 1]


def test_ui_defaults_to_localhost_xsrf_and_small_uploads(monkeypatch):
    command = _command(monkeypatch, ["ui"])
    assert _option(command, "--server.address") == "127.0.0.1"
    assert _option(command, "--server.enableXsrfProtection") == "true"
    assert 0 < int(_option(command, "--server.maxUploadSize")) <= 5
    # options come before the `--` that separates the app's own arguments
    assert command.index("--server.maxUploadSize") < command.index("--")


def test_ui_host_is_only_changed_on_request(monkeypatch):
    command = _command(monkeypatch, ["ui", "--host", "0.0.0.0"])
    assert _option(command, "--server.address") == "0.0.0.0"
    assert _option(command, "--server.enableXsrfProtection") == "true"


def test_save_refuses_paths_outside_the_workspace(tmp_path):
    from ui.designer import outside_workspace

    root = tmp_path / "repo"
    (root / "specs").mkdir(parents=True)
    assert not outside_workspace(root / "specs" / "mine.yaml", [root])
    assert outside_workspace(root / ".." / "elsewhere.yaml", [root])
    assert outside_workspace(root / "specs" / ".." / ".." / "x.yaml", [root])
    assert outside_workspace(Path("/etc/passwd.yaml"), [root])
    assert not outside_workspace(tmp_path / "x.yaml", [root, tmp_path])
