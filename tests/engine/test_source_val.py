"""Source validation (held-out identities of the sources): a learning curve every
``--source-val-every`` steps, the scores in the results JSON, a callback that can stop a run
(a search's pruning), and ``--source-val-ids`` on data without a held-out split."""

import pytest

from dgblocks.engine import read_jsonl, train
from recipes.baseline import Baseline

FLAGS = ["--smoke", "--no-plots", "--threads", "1", "--log-every", "100"]


def test_learning_curve_and_results(tmp_path):
    seen = []
    res = train(Baseline, [*FLAGS, "--source-val-every", "4", "--out", str(tmp_path / "r.json")],
                name="baseline", on_validation=lambda step, s: seen.append((step, s["mAP"])))
    curve = [(r["step"], r["mAP"]) for r in read_jsonl(tmp_path / "r.metrics.jsonl")
             if r["phase"] == "val:train"]
    assert [s for s, _ in curve] == [4, 8, 12] and curve == seen
    assert res["source_val"]["summary"]["average"]["mAP"] == pytest.approx(curve[-1][1])
    assert all(n.endswith("-val") for n in res["source_val"]["metrics"])


class Prune(Exception):
    pass


def test_a_callback_can_stop_the_run(tmp_path):
    def stop(step, scores):
        raise Prune(step)

    with pytest.raises(Prune) as info:
        train(Baseline, [*FLAGS, "--source-val-every", "5", "--out", str(tmp_path / "r.json")],
              name="baseline", on_validation=stop)
    assert info.value.args == (5,)


def test_held_out_source_ids_on_real_data(tmp_path):
    from tests.data import fake_trees as ft

    for make in (ft.market, ft.cuhk02, ft.cuhk03, ft.cuhksysu, ft.viper, ft.prid, ft.grid,
                 ft.ilids):
        make(tmp_path / "data")
    res = train(Baseline, [*FLAGS, "--steps", "1", "--batch-size", "8", "--data", "real",
                           "--data-root", str(tmp_path / "data"), "--protocol", "protocol1",
                           "--image-size", "64", "32", "--source-val-ids", "2",
                           "--out", str(tmp_path / "r.json")], name="baseline")
    assert list(res["source_val"]["metrics"]) == ["sources-val"]
