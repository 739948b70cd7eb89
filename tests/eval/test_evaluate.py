"""evaluate_benchmark / format_table / worst_domain on the smoke benchmarks."""

import pytest
import torch

from dgblocks import ShapeError, ValueRangeError
from dgblocks.data import ReIDDataset, TargetDomain
from dgblocks.eval import evaluate_benchmark, format_table, worst_domain
from dgblocks.protocols import build_benchmark


@pytest.fixture(scope="module")
def bench():
    return build_benchmark("synthetic", smoke=True)


def oracle_encoder(pid_of_image):
    """Encodes an image by a one-hot of its identity: perfect retrieval."""
    def encode(x):
        keys = x.flatten(1).sum(1)
        return torch.stack([pid_of_image[round(float(k), 2)] for k in keys])
    return encode


def test_shapes_and_keys(bench):
    res = evaluate_benchmark(lambda x: x.flatten(1), bench.targets, progress=False)
    assert set(res) == {t.name for t in bench.targets}
    r = next(iter(res.values()))
    for k in ("R1", "R5", "R10", "mAP", "R1_std", "mAP_std"):
        assert 0 <= r[k] <= 100
    assert r["num_splits"] == 2
    assert r["R1"] <= r["R5"] <= r["R10"]


def test_perfect_encoder_scores_100():
    imgs = torch.arange(6, dtype=torch.uint8).view(6, 1, 1, 1).expand(6, 1, 2, 2).contiguous()
    pool = ReIDDataset(imgs, pids=[0, 1, 2, 0, 1, 2], camids=[0, 0, 0, 1, 1, 1])
    t = TargetDomain("toy", splits=[(pool.subset([0, 1]), pool.subset([3, 4, 5]))])
    enc = lambda x: torch.nn.functional.one_hot(  # noqa: E731
        (x.flatten(1)[:, 0] * 255).round().long() % 3, 3).float()
    res = evaluate_benchmark(enc, [t], progress=False)
    assert res["toy"]["R1"] == 100 and res["toy"]["mAP"] == 100


def test_classification_targets():
    b = build_benchmark("digits", smoke=True)
    res = evaluate_benchmark(None, b.targets, classify=lambda x: torch.zeros(x.shape[0], 10),
                             progress=False)
    assert res["rot75"]["acc"] == pytest.approx(10.0)
    with pytest.raises(ValueRangeError, match="classify"):
        evaluate_benchmark(None, b.targets, progress=False)


def test_table_and_wda(bench):
    res = evaluate_benchmark(lambda x: x.flatten(1), bench.targets, progress=False)
    table = format_table(res, title="smoke")
    assert "average" in table and "worst" in table and "±" in table
    name, value = worst_domain(res)
    assert value == min(r["R1"] for r in res.values()) and name in res


def test_bad_encoder(bench):
    with pytest.raises(ShapeError, match="encode"):
        evaluate_benchmark(lambda x: x, bench.targets, progress=False)
