"""Training trains: a short AGG run at the default regime (learning rate, warm-up, weight decay)
beats the untrained network on the unseen synthetic targets by a clear margin.

The benchmark is a reduced synthetic one (the ``--smoke`` sizes swapped for a medium config), so
the two runs take about 20 s on one core (seed 0: R-1 11.7 untrained, 21.7 after 100 steps).
"""

import pytest
import torch

from dgblocks.data.synthetic_reid import SyntheticReIDConfig
from recipes import baseline

MEDIUM = SyntheticReIDConfig(num_sources=4, num_targets=2, train_ids=40, images_per_id=8,
                             eval_ids=30, test_ids=30, distractors=30, num_splits=2)
FLAGS = ["--smoke", "--threads", "1", "--no-plots", "--batch-size", "64",
         "--ckpt-every", "1000", "--log-every", "1000"]


@pytest.fixture
def medium_smoke(monkeypatch):
    monkeypatch.setattr(SyntheticReIDConfig, "smoke", classmethod(lambda cls, **kw: MEDIUM))


def _r1(tmp_path, name, *extra):
    threads = torch.get_num_threads()
    try:
        res = baseline.main([*FLAGS, "--out", str(tmp_path / name / "results.json"), *extra])
    finally:
        torch.set_num_threads(threads)
    return res["summary"]["average"]["R1"]


def test_short_run_beats_untrained(tmp_path, medium_smoke):
    lr = str(baseline.Config().lr)  # the default regime, not the smoke learning rate
    untrained = _r1(tmp_path, "untrained", "--steps", "0")
    trained = _r1(tmp_path, "trained", "--steps", "100", "--lr", lr)
    assert trained >= 1.5 * untrained, (untrained, trained)
