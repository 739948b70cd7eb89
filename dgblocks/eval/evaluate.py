"""Evaluate an encoder on the target domains of a benchmark; print the paper-style table.

``evaluate_benchmark`` encodes every image of a target once (splits are subsets of one pool
and share features), scores each split with :func:`~dgblocks.eval.streaming.rank_features`
(the distances of :func:`dgblocks.distances.pairwise_distance`, a block of queries at a time:
the query x gallery matrix is never held), and reports the mean and standard deviation over
splits, in percent. With ``return_details=True`` it also hands back each split's features and
ranking, so that plots reuse them instead of encoding again. Classification targets (rotated
digits) are scored by the accuracy of a ``classify`` callable on the query images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, get_args

import torch
from torch import Tensor

from dgblocks._checks import ValueRangeError, check_choice, check_int
from dgblocks.data.base import TargetDomain
from dgblocks.distances import Metric
from dgblocks.eval.encode import check_callable, check_device, encode_dataset, image_batches
from dgblocks.eval.ranking import RankingResult
from dgblocks.eval.streaming import rank_features
from dgblocks.eval.summary import check_metric_table, mean_std, summarize

__all__ = ["encode_dataset", "evaluate_benchmark", "format_table", "worst_domain",
           "summarize_splits", "SplitEvaluation"]

METRICS = ("R1", "R5", "R10", "mAP")
MAX_RANK = 50  # the ranking kept per split (the table reports R1, R5, R10)


class SplitEvaluation(NamedTuple):
    """One (query, gallery) split as :func:`evaluate_benchmark` scored it: the features
    (float32, on the CPU, in the split's image order) and the :class:`RankingResult`
    (CMC to rank 50)."""

    query_features: Tensor
    gallery_features: Tensor
    result: RankingResult


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
        if not isinstance(r, dict):
            raise ValueRangeError(f"rows[{i}]: expected a dict {{metric: value}}, got {r!r}")
        if set(r) != set(rows[0]):
            raise ValueRangeError(f"rows[{i}]: expected a dict with the metrics of rows[0]"
                                  f" {sorted(rows[0])}, got {r!r}")
    out: dict[str, float] = {}
    for k in rows[0]:
        out[k], out[f"{k}_std"] = mean_std(r[k] for r in rows)
    out["num_splits"] = len(rows)
    return out


def _evaluate_reid(encode, target: TargetDomain, batch_size, device, progress, metric, ap_mode
                   ) -> tuple[dict[str, float], list[SplitEvaluation]]:
    root = target.splits[0][0].origin[0]
    shared = all(q.origin[0] is root and g.origin[0] is root for q, g in target.splits)
    rows, details = [], []
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
        rank_on = device if device.type == "cuda" else qf.device  # the blocks stay there
        r = rank_features(qf.to(rank_on), gf.to(rank_on), q.pids, g.pids, q.camids, g.camids,
                          metric=metric, max_rank=MAX_RANK, ap_mode=ap_mode)
        rows.append({k: v for k, v in r.as_dict().items() if k in METRICS})
        details.append(SplitEvaluation(qf, gf, r))
    return summarize_splits(rows), details


@torch.no_grad()
def _evaluate_cls(classify, target: TargetDomain, batch_size, device, progress):
    if classify is None:
        raise ValueRangeError(f"classify: expected a callable (B, C, H, W) -> logits for the "
                              f"classification target {target.name!r}, got None")
    rows = []
    for q, _ in target.splits:
        correct = 0
        for s, x in enumerate(image_batches(q, torch.arange(len(q)), batch_size)):
            pred = classify(x.to(device)).argmax(1).cpu()
            correct += int((pred == q.pids[s * batch_size: s * batch_size + x.shape[0]]).sum())
        rows.append({"acc": 100.0 * correct / max(1, len(q))})
    return summarize_splits(rows)


def evaluate_benchmark(encode: Callable[[Tensor], Tensor], targets: Sequence[TargetDomain], *,
                       batch_size: int = 128, device: Any = "cpu", progress: bool = True,
                       classify: Callable[[Tensor], Tensor] | None = None,
                       metric: str = "euclidean", ap_mode: str = "step",
                       return_details: bool = False) -> Any:
    """Score ``encode`` on every target; mean (and ``_std``) over splits, in percent.

    Args:
        encode: images ``(B, C, H, W)`` in ``[0, 1]`` -> features ``(B, D)``; put the model
            in ``eval()`` mode first (this function only disables gradients).
        targets: the benchmark's ``targets`` (or ``source_val``).
        batch_size: images per forward pass.
        device: where the images are sent before ``encode``; on CUDA the ranking runs there.
        progress: tqdm bar per target.
        classify: images -> logits ``(B, K)``, for ``task="classification"`` targets.
        metric: distance of :func:`dgblocks.distances.pairwise_distance`.
        ap_mode: ``"step"`` or ``"trapezoid"`` (see :func:`evaluate_ranking`).
        return_details: also return ``{target: [SplitEvaluation, ...]}`` (ReID targets, one
            per split: features and ranking, e.g. for plots without encoding again).

    Returns:
        ``{target: {"R1", "R5", "R10", "mAP", "R1_std", ..., "num_splits"}}`` for ReID targets,
        ``{target: {"acc", "acc_std", "num_splits"}}`` for classification targets; with
        ``return_details``, the pair ``(metrics, details)``.

    Example:
        >>> from dgblocks.protocols import build_benchmark
        >>> b = build_benchmark("synthetic", smoke=True)
        >>> res = evaluate_benchmark(lambda x: x.flatten(1), b.targets, progress=False)
        >>> tuple(sorted(res[b.targets[0].name]))[:3]
        ('R1', 'R10', 'R10_std')
    """
    if isinstance(targets, (TargetDomain, str, dict)) or not isinstance(targets, Sequence) \
            or not targets:
        raise ValueRangeError(f"targets: expected a non-empty sequence of TargetDomain, got"
                              f" {targets!r}")
    for i, t in enumerate(targets):
        if not isinstance(t, TargetDomain):
            raise ValueRangeError(f"targets[{i}]: expected a TargetDomain, got {t!r}")
    if any(t.task != "classification" for t in targets):
        check_callable(encode, "encode")
    if classify is not None:
        check_callable(classify, "classify")
    check_int(batch_size, name="batch_size", minimum=1)
    device = check_device(device)
    check_choice(metric, get_args(Metric), name="metric")
    check_choice(ap_mode, ("step", "trapezoid"), name="ap_mode")
    if not isinstance(return_details, bool):
        raise ValueRangeError(f"return_details: expected a bool, got {return_details!r}")
    out, details = {}, {}
    for t in targets:
        if t.task == "classification":
            out[t.name] = _evaluate_cls(classify, t, batch_size, device, progress)
        else:
            out[t.name], details[t.name] = _evaluate_reid(encode, t, batch_size, device,
                                                          progress, metric, ap_mode)
    return (out, details) if return_details else out


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
    if not isinstance(title, str):
        raise ValueRangeError(f"title: expected a str, got {type(title).__name__} {title!r}")
    if not isinstance(std, bool):
        raise ValueRangeError(f"std: expected a bool, got {std!r}")
    first = next(iter(results.values()))
    keys = [k for k in (*METRICS, "acc") if k in first]
    for name, r in results.items():
        if any(k not in r for k in keys):
            raise ValueRangeError(f"results[{name!r}]: expected the metrics {keys} of the first"
                                  f" target, got {sorted(r)}")
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
