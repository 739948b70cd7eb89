"""plot_run reuses the features and rankings evaluate_benchmark computed (finish_run's path)."""

from types import SimpleNamespace

import numpy as np
import torch

import dgblocks.viz as viz
from dgblocks.engine.evaluation import plot_run
from dgblocks.eval import evaluate_benchmark
from dgblocks.protocols import build_benchmark


def _fake_run(tmp_path):
    bench = build_benchmark("synthetic", smoke=True)
    args = SimpleNamespace(seed=0, eval_batch_size=32)
    return SimpleNamespace(bench=bench, args=args, out=tmp_path / "r.json", device="cpu",
                           is_main=True, name="toy")


def _record(monkeypatch):
    seen = {}

    def keep(name):
        def fn(*a, **k):
            seen[name] = a
            return f"{name}.png"
        return fn

    for name in ("plot_tsne", "plot_cmc", "plot_retrieval_grid", "plot_training_curves"):
        monkeypatch.setattr(viz, name, keep(name))
    return seen


def test_plot_run_reuses_details(tmp_path, monkeypatch):
    run = _fake_run(tmp_path)
    images = []

    def encode(x):
        images.append(x.shape[0])
        return x.flatten(1)

    seen = _record(monkeypatch)
    plain = plot_run(run, encode)  # encodes the targets itself
    curves_plain, tsne_plain = seen["plot_cmc"][0], seen["plot_tsne"][0]
    _, details = evaluate_benchmark(encode, run.bench.targets, progress=False,
                                    return_details=True)
    images.clear()
    reused = plot_run(run, encode, details=details)
    assert reused == plain
    assert sum(images) == min(80 * run.bench.num_domains, len(run.bench.train))  # sources only
    curves = seen["plot_cmc"][0]
    for name, (ranks, rate) in curves.items():
        assert np.array_equal(ranks, curves_plain[name][0]) and len(ranks) == 20
        assert np.array_equal(rate, curves_plain[name][1])
    assert torch.equal(seen["plot_tsne"][0], tsne_plain)
