"""The end of a run: evaluate on the unseen targets, print the table, write results and plots.

Under DDP every rank runs the evaluation in lockstep: each encodes its share of every batch
and the features are all-gathered (:func:`dgblocks.engine.distributed.gathered_encode`), so
all ranks hold the same metrics; rank 0 prints and writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from dgblocks.engine.config import config_dict
from dgblocks.engine.distributed import barrier, gathered_encode, shutdown_distributed
from dgblocks.engine.logging import read_jsonl
from dgblocks.engine.results import environment, git_commit, write_json

if TYPE_CHECKING:
    from dgblocks.eval import SplitEvaluation

__all__ = ["finish_run", "plot_run"]


def finish_run(run: Any, encode: Callable[[Tensor], Tensor], *,
               classify: Callable[[Tensor], Tensor] | None = None,
               extra: dict[str, Any] | None = None, title: str = "",
               shutdown: bool = True) -> dict[str, Any]:
    """Evaluate ``encode`` (and ``classify`` for classification targets) on the benchmark's
    targets; print the table; write ``--out`` (results JSON) and the PNGs beside it.

    Args:
        run: the :class:`~dgblocks.engine.Run` (its benchmark must be built).
        encode: images ``(B, C, H, W)`` in ``[0, 1]`` -> features ``(B, D)``.
        classify: images -> logits, for ``task="classification"`` benchmarks (digits).
        extra: more entries for the results JSON (ablation name, central domain, ...).
        title: the table's title (default: the recipe name).
        shutdown: destroy the process group afterwards (DDP).

    Returns:
        The results payload (``metrics`` per target, ``summary``, ``config``, ...).
    """
    from dgblocks.eval import evaluate_benchmark, format_table, summarize

    if run.bench is None:
        raise ValueError("run: expected run.benchmark() to be called before finish()")
    for obj in run.objects.values():
        if isinstance(obj, nn.Module):
            obj.eval()
    enc = gathered_encode(encode)
    cls = gathered_encode(classify) if classify is not None else None
    t0 = time.time()
    plots = bool(run.args.plots)  # then keep each split's features for the plots
    with torch.no_grad():
        out = evaluate_benchmark(enc, run.bench.targets, batch_size=run.args.eval_batch_size,
                                 device=run.device, progress=run.is_main, classify=cls,
                                 return_details=plots)
    metrics, details = out if plots else (out, None)
    keys = ("acc",) if run.bench.task == "classification" else ("R1", "R5", "R10", "mAP")
    payload = {
        "recipe": run.name, "benchmark": run.bench.name, "task": run.bench.task,
        "targets": [t.name for t in run.bench.targets],
        "metrics": metrics, "summary": summarize(metrics, keys),
        "config": config_dict(run.cfg) if run.cfg is not None else {},
        "shared": config_dict(run.args), "seed": run.args.seed,
        "world_size": run.dist.world_size, "commit": git_commit(),
        "environment": environment(), "train_seconds": round(t0 - run.t0, 2),
        "eval_seconds": round(time.time() - t0, 2), **(extra or {})}
    if run.is_main:
        print(format_table(metrics, title=title or f"{run.name} on {run.bench.name}"), flush=True)
        write_json(run.out, payload)
        print(f"results: {run.out}", flush=True)
    if plots:
        payload["plots"] = plot_run(run, enc, details=details)
        if run.is_main:
            write_json(run.out, payload)
    run.logger.close()
    barrier()
    if shutdown:
        shutdown_distributed()
    return payload


def _sample(ds: Any, n: int, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(len(ds), generator=g)[:n].sort().values


def plot_run(run: Any, encode: Callable[[Tensor], Tensor], *, per_domain: int = 80,
             queries: int = 6, k: int = 8,
             details: dict[str, list[SplitEvaluation]] | None = None) -> dict[str, str]:
    """t-SNE (sources + targets, by domain and identity), retrieval grid of the first target,
    CMC curves and training curves, as ``<out stem>.<kind>.png``; returns the paths.

    ``details`` are the splits :func:`~dgblocks.eval.evaluate_benchmark` scored
    (``return_details=True``, as :func:`finish_run` passes them): a ReID target found there
    is neither encoded nor ranked again (its first split's features and CMC are used).
    Every rank encodes what is missing (in lockstep, see :func:`finish_run`); rank 0 draws.
    """
    from dgblocks.eval import cmc_curve, encode_dataset, rank_features
    from dgblocks.viz import plot_cmc, plot_retrieval_grid, plot_training_curves, plot_tsne
    from dgblocks.viz.retrieval import rank_gallery

    bench, seed, out = run.bench, run.args.seed, run.out
    kw = {"batch_size": run.args.eval_batch_size, "device": run.device}
    paths: dict[str, str] = {}
    feats, doms, pids, names = [], [], [], list(bench.domain_names)
    with torch.no_grad():
        idx = _sample(bench.train, per_domain * bench.num_domains, seed)
        feats.append(encode_dataset(encode, bench.train, index=idx, **kw))
        doms.append(bench.train.domains[idx])
        pids.append(bench.train.pids[idx])
        offset = int(bench.train.pids.max()) + 1
        for target in bench.targets:
            q, g = target.splits[0]
            ds = q if bench.task == "classification" else g
            idx = _sample(ds, per_domain, seed)
            known = (details or {}).get(target.name)
            feats.append(known[0].gallery_features[idx] if known and ds is g
                         else encode_dataset(encode, ds, index=idx, **kw))
            doms.append(torch.full((len(idx),), len(names), dtype=torch.long))
            names.append(target.name)
            pids.append(ds.pids[idx] + (0 if bench.task == "classification" else offset))
            offset += int(ds.pids.max()) + 1
        curves, grid = {}, None
        if bench.task != "classification":
            for target in bench.targets:
                q, g = target.splits[0]
                known = (details or {}).get(target.name)
                if known:
                    qf, gf, r = known[0]
                else:
                    qf = encode_dataset(encode, q, **kw)
                    gf = encode_dataset(encode, g, **kw)
                    r = rank_features(qf, gf, q.pids, g.pids, q.camids, g.camids, max_rank=20)
                ranks, rate = cmc_curve(r)
                curves[target.name] = (ranks[:20], rate[:20])
                if grid is None:
                    sel = _sample(q, queries, seed)
                    ranked, match = rank_gallery(qf[sel], gf, q.pids[sel], g.pids, q.camids[sel],
                                                 g.camids, k=k)
                    grid = (q, g, sel, ranked, match, target.name)
    if not run.is_main:
        return paths
    stem = out.with_suffix("")
    paths["tsne"] = str(plot_tsne(torch.cat(feats), torch.cat(doms), torch.cat(pids),
                                  f"{stem}.tsne.png", domain_names=names, seed=seed,
                                  title=f"{run.name}: sources and unseen targets"))
    if grid is not None:
        q, g, sel, ranked, match, name = grid
        paths["retrieval"] = str(plot_retrieval_grid(
            [q.image(int(i)) for i in sel], _Images(g), ranked, match,
            f"{stem}.retrieval.png", title=f"{run.name}: {name}, top-{ranked.shape[1]}"))
        paths["cmc"] = str(plot_cmc(curves, f"{stem}.cmc.png", title=f"{run.name}: CMC"))
    metrics_file = out.with_suffix(".metrics.jsonl")
    if metrics_file.exists():
        records = read_jsonl(metrics_file)
        if records:
            paths["curves"] = str(plot_training_curves(records, f"{stem}.curves.png"))
    return paths


class _Images:
    """Lazy ``ds.image(i)`` access for the retrieval grid."""

    def __init__(self, ds: Any) -> None:
        self.ds = ds

    def __getitem__(self, i: int) -> Tensor:
        return self.ds.image(int(i))

    def __len__(self) -> int:
        return len(self.ds)
