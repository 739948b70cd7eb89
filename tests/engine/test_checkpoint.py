"""Atomic checkpoints, weights_only loading, RNG round trips, corrupt files."""

import random

import numpy as np
import pytest
import torch

from dgblocks.engine.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_latest_checkpoint,
    previous_path,
    save_checkpoint,
)
from dgblocks.engine.seeding import rng_state, seed_everything, set_rng_state


def test_round_trip(tmp_path):
    m = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(m.parameters())
    m(torch.randn(4, 3)).sum().backward()
    opt.step()
    p = save_checkpoint(tmp_path / "c.pt", {"model": m.state_dict(), "opt": opt.state_dict(),
                                            "step": 5, "nested": {"a": [1, 2.5, None]}})
    state = load_checkpoint(p)
    assert state["step"] == 5 and state["nested"] == {"a": [1, 2.5, None]}
    assert torch.equal(state["model"]["weight"], m.weight)
    assert [x.name for x in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left


def test_interrupted_save_keeps_previous(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 1})

    def dying_save(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # as if killed mid-write

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"step": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [x.name for x in tmp_path.iterdir()] == ["c.pt"]


@pytest.mark.parametrize("cut", [0, 10, 0.5])
def test_truncated_file_raises_naming_it(tmp_path, cut):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"w": torch.randn(100)})
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut) if isinstance(cut, float) else cut])
    with pytest.raises(CheckpointError, match="c.pt"):
        load_checkpoint(path)


def test_missing_foreign_and_unsafe_files(tmp_path):
    with pytest.raises(CheckpointError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"w": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a dgblocks checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    torch.save({"format": "dgblocks-checkpoint-v1", "f": random.Random}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="evil.pt"):  # weights_only refuses arbitrary globals
        load_checkpoint(tmp_path / "evil.pt")


def test_rng_state_round_trip_through_checkpoint(tmp_path):
    seed_everything(3)
    torch.rand(2), np.random.rand(), random.random(), np.random.randn()
    save_checkpoint(tmp_path / "r.pt", {"rng": rng_state()})
    expected = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)],
                np.random.randn(2), random.gauss(0, 1))
    seed_everything(99)
    set_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    got = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)],
           np.random.randn(2), random.gauss(0, 1))
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1])
    assert expected[2] == got[2] and np.array_equal(expected[3], got[3])
    assert expected[4] == got[4]


def _flip(path, at=0.5, n=64):
    data = bytearray(path.read_bytes())
    i = int(len(data) * at)
    data[i:i + n] = bytes(b ^ 0xFF for b in data[i:i + n])
    path.write_bytes(bytes(data))


def test_keeps_the_last_two(tmp_path):
    path = tmp_path / "c.pt"
    for step in (1, 2, 3):
        save_checkpoint(path, {"step": step})
    assert sorted(x.name for x in tmp_path.iterdir()) == ["c.prev.pt", "c.pt"]
    assert load_checkpoint(path)["step"] == 3
    assert load_checkpoint(previous_path(path))["step"] == 2


def test_flipped_block_of_bytes_is_detected(tmp_path):
    """The issue's probe: 64 flipped bytes loaded silently (64 optimiser values changed)."""
    path = tmp_path / "c.pt"
    m = torch.nn.Linear(64, 64)
    save_checkpoint(path, {"model": m.state_dict()})
    _flip(path)
    with pytest.raises(CheckpointError, match="c.pt"):
        load_checkpoint(path)


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_corrupt_latest_falls_back_to_previous_with_a_warning(tmp_path, damage):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 4, "w": torch.randn(500)})
    save_checkpoint(path, {"step": 8, "w": torch.randn(500)})
    if damage == "flip":
        _flip(path)
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    else:  # killed between the two renames
        path.unlink()
    with pytest.warns(RuntimeWarning, match="c.pt"):
        state, used = load_latest_checkpoint(path)
    assert state["step"] == 4 and used == previous_path(path)


def test_both_corrupt_raises_naming_both(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 4})
    save_checkpoint(path, {"step": 8})
    path.write_bytes(b"")
    previous_path(path).write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="c.prev.pt"):
        load_latest_checkpoint(path)
