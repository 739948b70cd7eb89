"""dgblocks.engine.stage_cache: atomic write, one key per settings, unreadable files recomputed."""

import os

import pytest
import torch

from dgblocks._checks import DGBlocksError
from dgblocks.engine.stage_cache import StageCache, settings_key

SETTINGS = {"data": "synthetic", "seed": 0, "backbone": "resnet_tiny", "steps": 4, "lr": 1e-3,
            "size": (64, 32)}


def test_roundtrip_and_file_name(tmp_path):
    cache = StageCache(tmp_path / "c", "stage1", SETTINGS)
    assert cache.load() is None
    path = cache.save({"model": {"w": torch.arange(3.0)}, "ot": [[0.0, 1.0]]})
    assert path == cache.path == tmp_path / "c" / f"stage1-{settings_key(SETTINGS)}.pt"
    got = StageCache(tmp_path / "c", "stage1", dict(reversed(SETTINGS.items()))).load()
    assert torch.equal(got["model"]["w"], torch.arange(3.0)) and got["ot"] == [[0.0, 1.0]]


@pytest.mark.parametrize("name,value", [("seed", 1), ("steps", 5), ("lr", 2e-3),
                                        ("backbone", "mobilenetv2"), ("size", (32, 16))])
def test_key_changes_when_any_setting_changes(tmp_path, name, value):
    other = SETTINGS | {name: value}
    assert settings_key(other) != settings_key(SETTINGS)
    StageCache(tmp_path, "stage1", SETTINGS).save({"x": torch.ones(1)})
    assert StageCache(tmp_path, "stage1", other).load() is None   # never the stale result


def test_write_is_atomic(tmp_path, monkeypatch):
    cache = StageCache(tmp_path, "F0", SETTINGS)
    cache.save({"v": torch.zeros(2)})

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        cache.save({"v": torch.ones(2)})
    monkeypatch.undo()
    assert torch.equal(cache.load()["v"], torch.zeros(2))        # old file intact
    assert sorted(p.name for p in tmp_path.iterdir()) == [cache.path.name]  # no temp left


@pytest.mark.parametrize("content", [b"", b"not a torch file", "other format"])
def test_corrupt_file_is_recomputed_with_a_warning(tmp_path, content):
    cache = StageCache(tmp_path, "stage1", SETTINGS)
    if content == "other format":    # a plain torch file from before the cache format
        torch.save({"model": {}, "key": "x"}, cache.path)
    else:
        cache.path.write_bytes(content)
    with pytest.warns(RuntimeWarning, match=str(cache.path)):
        assert cache.load() is None
    cache.save({"v": torch.ones(1)})                              # recomputed and rewritten
    assert torch.equal(cache.load()["v"], torch.ones(1))


def test_bad_arguments_name_themselves(tmp_path):
    with pytest.raises(DGBlocksError, match="settings"):
        settings_key(["steps", 4])
    with pytest.raises(DGBlocksError, match="name"):
        StageCache(tmp_path, "", SETTINGS)
    with pytest.raises(DGBlocksError, match="payload"):
        StageCache(tmp_path, "s", SETTINGS).save([1, 2])


@pytest.mark.parametrize("damage", ["empty", "flip"])
def test_zero_byte_and_flipped_cache_recomputed(tmp_path, damage):
    """The issue's probe: a kill while writing left a 0-byte file, then a bare EOFError."""
    cache = StageCache(tmp_path, "stage1", SETTINGS)
    cache.save({"w": torch.randn(256)})
    if damage == "empty":
        cache.path.write_bytes(b"")
    else:
        data = bytearray(cache.path.read_bytes())
        i = len(data) // 2
        data[i:i + 64] = bytes(b ^ 0xFF for b in data[i:i + 64])
        cache.path.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match=str(cache.path)):
        assert cache.load() is None
    cache.save({"w": torch.ones(1)})
    assert torch.equal(cache.load()["w"], torch.ones(1))
    assert sorted(p.name for p in tmp_path.iterdir()) == [cache.path.name]  # no .prev copy
