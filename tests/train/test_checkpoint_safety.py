"""A truncated or tampered checkpoint is refused with a CheckpointError, and state.pt holding
a pickled object is refused without running it (weights_only=True)."""

from __future__ import annotations

import pytest
import torch

from compiler.train import checkpoint as ck

def _saved(tmp_path):
    model = torch.nn.Linear(3, 2)
    ck.save(tmp_path, model, {"epoch": 1, "global_step": 5})
    return model

def test_intact_checkpoint_loads(tmp_path):
    model = _saved(tmp_path)
    state = ck.load_checkpoint(tmp_path)
    assert state["epoch"] == 1 and torch.equal(state["model"]["weight"], model.weight.detach())

@pytest.mark.parametrize("name", [ck.STATE_FILE, ck.MODEL_FILE])
def test_truncated_file_is_refused(tmp_path, name):
    _saved(tmp_path)
    path = tmp_path / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ck.CheckpointError, match="cannot read"):
        ck.load_checkpoint(tmp_path)

class _Boom:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))

def test_pickled_code_in_state_is_never_run(tmp_path, monkeypatch):
    _saved(tmp_path)
    monkeypatch.chdir(tmp_path)
    torch.save({"format": "x", "evil": _Boom()}, tmp_path / ck.STATE_FILE)
    with pytest.raises(ck.CheckpointError, match="cannot read"):
        ck.load_state(tmp_path)
    assert not (tmp_path / "PWNED").exists()
