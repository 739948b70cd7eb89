"""The engine's and the methods' public callables reject bad input by a ValueError naming the
argument (each case raised a foreign TypeError / KeyError / AttributeError or was accepted
silently before)."""

import math

import pytest
import torch
from torch import nn

from dgblocks import methods as M
from dgblocks.engine import (
    derive_seed,
    load_checkpoint,
    lr_factor,
    parse_config,
    read_jsonl,
    save_checkpoint,
    seed_everything,
    warmup_cosine,
)
from dgblocks.engine.results import write_json
from dgblocks.engine.stage_cache import StageCache
from tests.recipes._build import fake_bench


class _T(M.Method):
    def __init__(self, cfg, bench, seed=0):
        super().__init__(cfg, bench, seed=seed)
        self.lin = nn.Linear(2, 2)

    def configure_optimizers(self):
        return {"main": self.make_optimizer(self.lin.parameters())}


def _m():
    return _T(M.TrainConfig(), fake_bench())


CASES = [
    ("derive_seed", lambda: derive_seed(0, None), "parts"),
    ("derive_seed_inf", lambda: derive_seed(math.inf), "parts"),
    ("seed", lambda: seed_everything(-1), "seed"),
    ("step", lambda: lr_factor("3", total=10), "step"),
    ("warmup", lambda: lr_factor(1, total=10, warmup=None), "warmup"),
    ("milestones", lambda: lr_factor(1, total=10, schedule="step", milestones=3), "milestones"),
    ("milestones_order", lambda: lr_factor(1, total=10, schedule="step",
                                           milestones=(0.8, 0.4)), "milestones"),
    ("cosine_step", lambda: warmup_cosine(-1, total=10, warmup=0.1), "step"),
    ("ckpt_path", lambda: load_checkpoint(None), "path"),
    ("ckpt_state", lambda: save_checkpoint("/tmp/dgb-bad-input.pt", [1]), "state"),
    ("jsonl_path", lambda: read_jsonl(3), "path"),
    ("json_payload", lambda: write_json("/tmp/dgb-bad.json", [1]), "payload"),
    ("cache_name", lambda: StageCache("/tmp", (1, 2), {}), "name"),
    ("argv", lambda: parse_config(M.TrainConfig, "--steps 3"), "argv"),
    ("lr_nan", lambda: M.TrainConfig(lr=math.nan), "--lr"),
    ("lr_inf", lambda: M.TrainConfig(lr=math.inf), "--lr"),
    ("warmup_max", lambda: M.TrainConfig(warmup=1.5), "--warmup"),
    ("milestones_cfg", lambda: M.TrainConfig(milestones=(0.9, 0.2)), "--milestones"),
    ("image_size", lambda: M.TrainConfig(image_size=(64, 32, 3)), "--image-size"),
    ("minimize_loss", lambda: _m().minimize(None), "loss"),
    ("minimize_graph", lambda: _m().minimize(torch.zeros(())), "loss"),
    ("minimize_name", lambda: _m().minimize(torch.zeros((), requires_grad=True), name=[1]),
     "name"),
    ("lr_name", lambda: _m().lr("other"), "name"),
    ("generator_name", lambda: _m().generator([1]), "name"),
    ("track_name", lambda: _m().track(3, nn.Linear(1, 1)), "name"),
    ("total", lambda: _m().make_optimizer(nn.Linear(1, 1).parameters(), total=1.5), "total"),
    ("adv_in_dim", lambda: M.NuisanceAdversary(in_dim=0, sizes={"c": 2}, loss="ne"), "in_dim"),
    ("adv_lr", lambda: M.NuisanceAdversary(in_dim=2, sizes={"c": 2}, loss="ne", lr=math.inf),
     "lr"),
]


@pytest.mark.parametrize("call,arg", [pytest.param(c, a, id=i) for i, c, a in CASES])
def test_bad_input_raises_a_value_error_naming_the_argument(call, arg):
    with pytest.raises(ValueError, match=arg):
        call()


def test_save_checkpoint_never_renames_a_folder_out_of_the_way(tmp_path):
    (tmp_path / "ckpt.pt").mkdir()
    with pytest.raises(ValueError, match="folder"):
        save_checkpoint(tmp_path / "ckpt.pt", {"step": 1})
    assert (tmp_path / "ckpt.pt").is_dir() and not (tmp_path / "ckpt.prev.pt").exists()
