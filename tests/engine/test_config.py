"""Config -> CLI: every field a flag with its help, smoke values, --config files, precedence."""

import json
from dataclasses import dataclass
from typing import Literal

import pytest

from dgblocks.engine import ConfigError, SharedArgs, arg, parse_config
from dgblocks.engine.config import config_dict


@dataclass
class Cfg:
    steps: int = arg(100, "training steps", smoke=5)
    lambda_1: float = arg(1.0, "weight of the entropy term (DIR-ReID eq 4)")
    strategy: Literal["random", "mixup"] = arg("mixup", "backdoor strategy")
    use_ba: bool = arg(True, "backdoor adjustment on/off")
    sizes: tuple[int, ...] = arg((1, 2), "layer sizes")
    name: str = arg("x", "a name", choices=("x", "y"))


@dataclass
class Checked:
    steps: int = arg(100, "training steps")
    batch_size: int = arg(32, "batch size")
    auto_batch_size: int = arg(0, "0: automatic")
    ot_samples: int = arg(1000, "OT subsample")
    lr: float = arg(1e-3, "learning rate")

    @property
    def auto_batch(self):
        return self.auto_batch_size


def test_defaults_and_flags():
    cfg, shared = parse_config(Cfg, [])
    assert cfg == Cfg() and shared == SharedArgs()
    cfg, shared = parse_config(Cfg, ["--steps", "7", "--lambda-1", "0.5", "--no-use-ba",
                                     "--strategy", "random", "--sizes", "3", "4", "--seed", "3",
                                     "--smoke"])
    assert (cfg.steps, cfg.lambda_1, cfg.use_ba, cfg.strategy, cfg.sizes) == (7, 0.5, False,
                                                                              "random", (3, 4))
    assert shared.seed == 3 and shared.smoke
    cfg, _ = parse_config(Cfg, ["--lambda_1", "2"])  # underscore spelling also works
    assert cfg.lambda_1 == 2.0


def test_help_lists_every_field_with_its_text(capsys):
    with pytest.raises(SystemExit):
        parse_config(Cfg, ["--help"])
    out = capsys.readouterr().out
    for text in ("training steps", "DIR-ReID eq 4", "--use-ba", "--no-use-ba", "[smoke: 5]",
                 "--resume", "--data-root", "--protocol", "--device", "--out", "--config"):
        assert text in out, text


def test_smoke_values_apply_only_with_smoke():
    assert parse_config(Cfg, ["--smoke"])[0].steps == 5
    assert parse_config(Cfg, ["--smoke", "--steps", "9"])[0].steps == 9


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_config_file_overrides_and_cli_wins(tmp_path, suffix):
    path = tmp_path / f"o{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps({"steps": 11, "lambda_1": 0.1, "sizes": [5], "seed": 4}))
    else:
        path.write_text("steps = 11\nlambda_1 = 0.1\nsizes = [5]\nseed = 4\n")
    cfg, shared = parse_config(Cfg, ["--config", str(path), "--smoke"])
    assert (cfg.steps, cfg.lambda_1, cfg.sizes, shared.seed) == (11, 0.1, (5,), 4)
    cfg, _ = parse_config(Cfg, ["--config", str(path), "--steps", "2"])
    assert cfg.steps == 2


def test_saved_config_reloads(tmp_path):
    cfg, shared = parse_config(Cfg, ["--steps", "3", "--sizes", "8"])
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"config": config_dict(cfg), "shared": config_dict(shared)}))
    again, shared2 = parse_config(Cfg, ["--config", str(path)])
    assert again == cfg and shared2.seed == shared.seed


def test_bad_config_names_file_and_key(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"stepz": 1}))
    with pytest.raises(ValueError, match=r"stepz.*bad.json"):
        parse_config(Cfg, ["--config", str(path)])
    path.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        parse_config(Cfg, ["--config", str(path)])
    with pytest.raises(SystemExit):
        parse_config(Cfg, ["--name", "z"])  # choices


# ---------------------------------------------------------------- parse-time validation
# each case failed (or passed silently) before: ZeroDivisionError, TypeError, numpy TypeError,
# accepted, or an error naming an internal argument ("total:", "max_samples")
@pytest.mark.parametrize("argv,flag", [
    (["--log-every", "0"], "--log-every"),
    (["--ckpt-every", "0"], "--ckpt-every"),
    (["--ckpt-every", "-3"], "--ckpt-every"),
    (["--threads", "-1"], "--threads"),
    (["--workers", "-2"], "--workers"),
    (["--eval-batch-size", "0"], "--eval-batch-size"),
    (["--steps", "-5"], "--steps"),
    (["--ot-samples", "0"], "--ot-samples"),
    (["--batch-size", "0"], "--batch-size"),
    (["--protocol", "protocol1"], "--protocol"),
])
def test_bad_flag_values_name_the_flag(argv, flag):
    with pytest.raises(ConfigError, match=f"^{flag}:"):
        parse_config(Checked, argv)


@pytest.mark.parametrize("content,flag", [
    ({"lr": "0.001"}, "--lr"), ({"seed": 1.7}, "--seed"), ({"steps": True}, "--steps"),
    ({"plots": "no"}, "--plots"), ({"steps": -1}, "--steps"), ({"log_every": 0}, "--log-every"),
])
def test_bad_config_file_values_name_the_flag(tmp_path, content, flag):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ConfigError, match=f"^{flag}:"):
        parse_config(Checked, ["--config", str(path)])


def test_valid_edge_values_pass(tmp_path):
    cfg, shared = parse_config(Checked, ["--steps", "0", "--threads", "0"])
    assert cfg.steps == 0 and shared.threads == 0  # 0 steps: the untrained reference
    (tmp_path / "c.json").write_text(json.dumps({"lr": 1}))
    cfg, _ = parse_config(Checked, ["--config", str(tmp_path / "c.json")])
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    cfg, _ = parse_config(Checked, ["--data", "real", "--protocol", "protocol1"])
    assert cfg.auto_batch == 0  # a default of 0 (automatic) stays valid


def test_cli_user_errors_are_one_line_exit_2(tmp_path):
    """No traceback for a user mistake; the message names the flag."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    env.pop("DGBLOCKS_TRACEBACK", None)
    proc = subprocess.run([sys.executable, str(root / "recipes" / "baseline.py"),
                           "--log-every", "0"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "baseline: error: --log-every: expected an integer >= 1, got 0"
