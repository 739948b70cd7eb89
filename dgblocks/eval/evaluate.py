"""Evaluate an encoder on the target domains of a benchmark; print the paper-style table.

``evaluate_benchmark`` encodes every image of a target once (splits are subsets of one pool
and share features), computes the query x gallery distances with
:func:`dgblocks.distances.pairwise_distance`, scores each split with
:func:`~dgblocks.eval.ranking.evaluate_ranking`, and reports the mean and standard deviation
over splits, in percent. Classification targets (rotated digits) are scored by the accuracy of
a ``classify`` callable on the query images.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from dgblocks._checks import ShapeError, ValueRangeError, check_int
from dgblocks.data.base import ReIDDataset, TargetDomain
from dgblocks.distances import pairwise_distance
from dgblocks.eval.ranking import evaluate_ranking
from dgblocks.eval.summary import check_metric_table, mean_std, summarize

__all__ = ["encode_dataset", "evaluate_benchmark", "format_table", "worst_domain",
           "summarize_splits"]

METRICS = ("R1", "R5", "R10", "mAP")


def _batches(ds: ReIDDataset, index: Tensor, batch_size: int):
    for s in range(0, index.numel(), batch_size):
        idx = index[s: s + batch_size]
        if ds.images is not None and ds.transform is None:
            yield ds.images[idx].float().div_(255.0)
        else:
            yield torch.stack([ds[i][0] for i in idx.tolist()])


@torch.no_grad()
def encode_dataset(encode: Callable[[Tensor], Tensor], ds: ReIDDataset, *,
                   index: Tensor | None = None, batch_size: int = 128, device: Any = "cpu",
                   progress: bool = False, desc: str = "") -> Tensor:
    """Features ``(N, D)`` (float32, on CPU) of the images of ``ds`` (or ``index`` of them)."""
    check_int(batch_size, name="batch_size", minimum=1)
    index = torch.arange(len(ds)) if index is None else index
    feats = []
    it = _batches(ds, index, batch_size)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=math.ceil(index.numel() / batch_size), desc=desc, leave=False)
    for x in it:
        f = encode(x.to(device))
        if not isinstance(f, Tensor) or f.dim() != 2 or f.shape[0] != x.shape[0]:
            got = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
            raise ShapeError(f"encode: expected features of shape (B, D) with B={x.shape[0]},"
                             f" got {got}")
        feats.append(f.float().cpu())
    return torch.cat(feats) if feats else torch.empty(0, 0)


def summarize_splits(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean and sample standard deviation of each metric over splits
    (:func:`~dgblocks.eval.summary.mean_std`: ``ddof=1``, 0 for one split).

    Example:
        >>> summarize_splits([{"R1": 10.0}, {"R1": 14.0}])
        {'R1': 12.0, 'R1_std': 2.8284271247461903, 'num_splits': 2}
    """
    if isinstance(rows, (str, dict)) or not isinstance(rows, Sequence):
        raise ValueRangeError(f"rows: expected a sequence of {{metric: value}}, got {rows!r}")
    if not rows:
        raise ValueRangeError("rows: expected at least one split, got none")
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or set(r) != set(rows[0]):
            raise ValueRangeError(f"rows[{i}]: expected a dict with the metrics of rows[0]"
                                  f" {sorted(rows[0])}, got {r!r}")
    out: dict[str, float] = {}
    for k in rows[0]:
        out[k], out[f"{k}_std"] = mean_std(r[k] for r in rows)
    out["num_splits"] = len(rows)
    return out


def _evaluate_reid(encode, target: TargetDomain, batch_size, device, progress, metric, ap_mode):
    root = target.splits[0][0].origin[0]
    shared = all(q.origin[0] is root and g.origin[0] is root for q, g in target.splits)
    rows = []
    if shared:  # encode the union of all splits' images once
        used = torch.cat([torch.cat([q.origin[1], g.origin[1]]) for q, g in target.splits])
        used = used.unique()
        feats = encode_dataset(encode, root, index=used, batch_size=batch_size, device=device,
                               progress=progress, desc=target.name)
        pos = torch.full((len(root),), -1, dtype=torch.long)
        pos[used] = torch.arange(used.numel())
    for q, g in target.splits:
        if shared:
            qf, gf = feats[pos[q.origin[1]]], feats[pos[g.origin[1]]]
        else:
            qf = encode_dataset(encode, q, batch_size=batch_size, device=device)
            gf = encode_dataset(encode, g, batch_size=batch_size, device=device)
        dist = pairwise_distance(qf, gf, metric=metric)
        r = evaluate_ranking(dist, q.pids, g.pids, q.camids, g.camids, max_rank=10,
                             ap_mode=ap_mode)
        rows.append({k: v for k, v in r.as_dict().items() if k in METRICS})
    return summarize_splits(rows)


@torch.no_grad()
def _evaluate_cls(classify, target: TargetDomain, batch_size, device, progress):
    if classify is None:
        raise ValueRangeError(f"classify: expected a callable (B, C, H, W) -> logits for the "
                              f"classification target {target.name!r}, got None")
    rows = []
    for q, _ in target.splits:
        correct = 0
        for s, x in enumerate(_batches(q, torch.arange(len(q)), batch_size)):
            pred = classify(x.to(device)).argmax(1).cpu()
            correct += int((pred == q.pids[s * batch_size: s * batch_size + x.shape[0]]).sum())
        rows.append({"acc": 100.0 * correct / max(1, len(q))})
    return summarize_splits(rows)


def evaluate_benchmark(encode: Callable[[Tensor], Tensor], targets: Sequence[TargetDomain], *,
                       batch_size: int = 128, device: Any = "cpu", progress: bool = True,
                       classify: Callable[[Tensor], Tensor] | None = None,
                       metric: str = "euclidean", ap_mode: str = "step"
                       ) -> dict[str, dict[str, float]]:
    """Score ``encode`` on every target; mean (and ``_std``) over splits, in percent.

    Args:
        encode: images ``(B, C, H, W)`` in ``[0, 1]`` -> features ``(B, D)``; put the model
            in ``eval()`` mode first (this function only disables gradients).
        targets: the benchmark's ``targets`` (or ``source_val``).
        batch_size: images per forward pass.
        device: where the images are sent before ``encode``.
        progress: tqdm bar per target.
        classify: images -> logits ``(B, K)``, for ``task="classification"`` targets.
        metric: distance of :func:`dgblocks.distances.pairwise_distance`.
        ap_mode: ``"step"`` or ``"trapezoid"`` (see :func:`evaluate_ranking`).

    Returns:
        ``{target: {"R1", "R5", "R10", "mAP", "R1_std", ..., "num_splits"}}`` for ReID targets,
        ``{target: {"acc", "acc_std", "num_splits"}}`` for classification targets.

    Example:
        >>> from dgblocks.protocols import build_benchmark
        >>> b = build_benchmark("synthetic", smoke=True)
        >>> res = evaluate_benchmark(lambda x: x.flatten(1), b.targets, progress=False)
        >>> tuple(sorted(res[b.targets[0].name]))[:3]
        ('R1', 'R10', 'R10_std')
    """
    out = {}
    if isinstance(targets, TargetDomain) or not targets:
        raise ValueRangeError(f"targets: expected a non-empty sequence of TargetDomain, got"
                              f" {targets!r}")
    for t in targets:
        if t.task == "classification":
            out[t.name] = _evaluate_cls(classify, t, batch_size, device, progress)
        else:
            out[t.name] = _evaluate_reid(encode, t, batch_size, device, progress, metric,
                                         ap_mode)
    return out


def worst_domain(results: dict[str, dict[str, float]], key: str | None = None
                 ) -> tuple[str, float]:
    """Worst-domain accuracy (WDA): the target with the lowest ``key`` (R1 or acc) and value,
    as in :func:`~dgblocks.eval.summary.summarize`.

    Example:
        >>> worst_domain({"a": {"R1": 50.0}, "b": {"R1": 20.0}})
        ('b', 20.0)
    """
    if isinstance(results, dict) and not results:
        raise ValueRangeError("results: expected at least one target, got none")
    check_metric_table(results, name="results")
    if key is not None and not isinstance(key, str):
        raise ValueRangeError(f"key: expected a metric name, got {key!r}")
    key = key or ("acc" if "acc" in next(iter(results.values())) else "R1")
    s = summarize(results, (key,))
    if key not in s["worst"]:
        raise ValueRangeError(f"key: expected a metric of the results, got {key!r}")
    return s["worst_domain"][key], s["worst"][key]


def format_table(results: dict[str, dict[str, float]], *, title: str = "",
                 std: bool = True) -> str:
    """Markdown table: one row per target (mean +- std over splits), the average, and the
    worst domain (WDA), both from :func:`~dgblocks.eval.summary.summarize` (so they equal the
    ``summary`` of the results JSON). "worst" is per metric: the row is labelled with the
    target when one target is the worst on every metric, otherwise each cell names its own.

    Example:
        >>> print(format_table({"a": {"acc": 90.0}, "b": {"acc": 80.0}}, std=False))
        | target | acc |
        | --- | --- |
        | a | 90.0 |
        | b | 80.0 |
        | average | 85.0 |
        | worst (b) | 80.0 |
    """
    if isinstance(results, dict) and not results:
        raise ValueRangeError("results: expected at least one target, got none")
    check_metric_table(results, name="results")
    first = next(iter(results.values()))
    keys = [k for k in (*METRICS, "acc") if k in first]
    lines = [f"**{title}**", ""] if title else []
    lines += ["| target | " + " | ".join(keys) + " |", "| --- " * (len(keys) + 1) + "|"]
    for name, r in results.items():
        cells = []
        for k in keys:
            s = f"{r[k]:.1f}"
            if std and r.get("num_splits", 1) > 1 and f"{k}_std" in r:
                s += f" ± {r[f'{k}_std']:.1f}"
            cells.append(s)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    summ = summarize(results, keys)
    keys = [k for k in keys if k in summ["worst"]]
    lines.append("| average | " + " | ".join(f"{summ['average'][k]:.1f}" for k in keys) + " |")
    names = {summ["worst_domain"][k] for k in keys}
    if len(names) == 1:
        lines.append(f"| worst ({names.pop()}) | "
                     + " | ".join(f"{summ['worst'][k]:.1f}" for k in keys) + " |")
    else:
        lines.append("| worst | " + " | ".join(f"{summ['worst'][k]:.1f} "
                                             f"({summ['worst_domain'][k]})" for k in keys) + " |")
    return "\n".join(lines)
