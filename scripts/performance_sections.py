"""One Markdown section per benchmark JSON, for scripts/make_performance.py.

Each renderer takes the parsed JSON and returns ``(lines, (goal, measured, met))``: the
section's body and its row of the summary table. They read fields with ``.get`` where a suite
may still change its format, and raise ``KeyError`` / ``TypeError`` where a field the
section cannot do without is gone (the page then says so).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Row = tuple[str, str, str]


def secs(v: float | None) -> str:
    """Seconds as text with a unit that keeps three significant digits."""
    if v is None:
        return "-"
    if v == 0:
        return "0 s"
    if v >= 1:
        return f"{v:.2f} s"
    return f"{v * 1e3:.3g} ms" if v >= 1e-3 else f"{v * 1e6:.3g} us"


def num(v: float | None, spec: str = ".2f") -> str:
    """A number (or ``-`` for ``None``)."""
    return "-" if v is None else format(v, spec)


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A markdown table: the header, its rule, a line per row (cells as given, ``str``-ed)."""
    return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header),
            *("| " + " | ".join(str(c) for c in r) + " |" for r in rows)]


def yes(ok: bool | None) -> str:
    """``yes`` / ``no`` / ``-``."""
    return "-" if ok is None else ("yes" if ok else "no")


def blocks(d: dict[str, Any]) -> tuple[list[str], Row]:
    rows = d["rows"]
    ref = [r for r in rows if r.get("ratio") is not None]
    slow = [r for r in ref if r["ratio"] < 0.8]
    lines = [f"Every public block, forward + backward at ReID sizes ({d.get('mode', '?')} run), "
             "beside a naive reference timed in the same run; ratio = reference / ours (> 1: "
             "ours faster). CPU goal: no block markedly slower than its reference (ratio >= "
             "0.8). There are no hand-written kernels: `torch.compile` is the fused path, "
             "compared with eager by `benchmarks/kernels.py` (CUDA section).", "",
             f"{len(ref) - len(slow)} of {len(ref)} rows with a reference have ratio >= 0.8"
             + (": below it, " + ", ".join(f"{r['block']} ({r['case']}, {r['ratio']:.2f})"
                                          for r in slow) if slow else "") + ".", "",
             "| block | case | pass | ours | reference | ratio | CPU-time ratio | max rel diff |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['block']} | {r.get('case', '-')} | {r.get('pass', '-')} | "
              f"{secs(r.get('ours_median_s'))} | {secs(r.get('reference_median_s'))} | "
              f"{num(r.get('ratio'))} | {num(r.get('cpu_ratio'))} | "
              f"{num(r.get('max_rel_diff'), '.1e')} |" for r in rows]
    if d.get("no_reference"):
        lines += ["", "No reference exists for: " + ", ".join(d["no_reference"]) + "."]
    return lines + [""], ("ratio >= 0.8 vs naive reference (CPU)",
                          f"{len(ref) - len(slow)} / {len(ref)} rows", yes(not slow))


def eval_ranking(d: dict[str, Any]) -> tuple[list[str], Row]:
    speedup = float(d["speedup"])
    lines = [f"`evaluate_ranking` (CMC + mAP) beside a per-query reference loop on the same "
             f"input; both give the same numbers (largest CMC difference "
             f"{num(d.get('max_abs_diff_cmc'), '.1e')}, mAP difference "
             f"{num(d.get('abs_diff_mAP'), '.1e')}). Goal: >= 10x faster than the loop.", "",
             f"**Speed-up: {speedup:.1f}x**" + (f" ({d['speedup_1_thread']:.1f}x with 1 thread)"
                                                if d.get("speedup_1_thread") else "") + ".", "",
             "| case | implementation | threads | median | IQR | runs |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r.get('case', '-')} | {r.get('impl', '-')} | {r.get('threads', '-')} | "
              f"{secs(r['median_s'])} | {secs(r.get('iqr_s'))} | {r.get('runs', '-')} |"
              for r in d["rows"]]
    return lines + [""], (">= 10x vs per-query loop", f"{speedup:.1f}x", yes(speedup >= 10))


def eval_streaming(d: dict[str, Any]) -> tuple[list[str], Row]:
    p, goal = d.get("problem", {}), float(d.get("goal_peak_rss_gb", 2.5))
    rows = {r["path"]: r for r in d["rows"]}
    full, stream = rows["full"], rows["streaming"]
    size = {k: f"{v:,}" if isinstance(v, int) else "?" for k, v in p.items()}
    size = {k: size.get(k, "?") for k in ("num_q", "num_g", "dim", "num_ids", "num_cams")}
    lines = [f"CMC and mAP of {size['num_q']} queries x {size['num_g']} gallery images "
             f"({size['dim']}-d float32 features, {size['num_ids']} identities, "
             f"{size['num_cams']} cameras; noisy identity clusters, mAP "
             f"{num(full.get('mAP'), '.3f')}, R-1 {num(full.get('R1'), '.3f')}), each path in "
             "its own child process: `pairwise_distance` + `evaluate_ranking` on the full "
             "matrix, and `rank_features` (a block of queries at a time). Peak = the child's "
             "resident-set high-water mark (`ru_maxrss`), features and interpreter included. "
             f"Results identical: {yes(d.get('identical_results'))}. Goal: streaming under "
             f"{goal:g} GB and no slower than the full path.", "",
             *table(["path", "time", "CPU time", "peak RSS",
                     "RSS before the call (features built)"],
                    [[r["path"], secs(r["seconds"]), secs(r.get("cpu_seconds")),
                      f"{r['peak_rss_gb']:.2f} GB", f"{num(r.get('rss_after_setup_gb'))} GB"]
                     for r in d["rows"]])]
    lines += ["", f"Streaming / full: {stream['seconds'] / full['seconds']:.2f}x the time, "
              f"{stream['peak_rss_gb'] / full['peak_rss_gb']:.2f}x the peak memory."]
    met = stream["peak_rss_gb"] < goal and stream["seconds"] <= full["seconds"]
    return lines + [""], (f"streaming < {goal:g} GB, no slower than full",
                          f"{stream['peak_rss_gb']:.2f} GB, {secs(stream['seconds'])} (full "
                          f"{full['peak_rss_gb']:.2f} GB, {secs(full['seconds'])})", yes(met))


def central_domain(d: dict[str, Any]) -> tuple[list[str], Row]:
    p = d.get("problem", {})
    agree = d.get("agreement_with_emd_on_subsamples") or []
    same = sum(bool(a.get("sinkhorn_agrees")) and bool(a.get("sliced_agrees")) for a in agree)
    ok = d.get("goal_fast_methods_under_10s")
    lines = [f"DDAN's central domain on {p.get('domains', '?')} domains x "
             f"{p.get('samples', '?')} x {p.get('dim', '?')}-D features, every OT method. Goal: "
             "the fast methods (sliced, sinkhorn) under 10 s. Sliced W1 is "
             f"{num(d.get('sliced_speedup_vs_pot_per_pair'), '.1f')}x faster than POT's "
             f"per-pair call; sinkhorn and sliced pick exact EMD's central domain on {same} of "
             f"{len(agree)} subsamples.", "",
             *table(["method", "samples per domain", "central", "median", "IQR", "runs"],
                    [[r["method"], r.get("samples_per_domain", "-"), r.get("central", "-"),
                      secs(r["median_s"]), secs(r.get("iqr_s")), r.get("runs", "-")]
                     for r in d["rows"]])]
    fast = [r["median_s"] for r in d["rows"] if r["method"] in ("sliced", "sinkhorn")]
    return lines + [""], ("sliced, sinkhorn < 10 s", " / ".join(secs(v) for v in fast),
                          yes(ok))


def id_pool(d: dict[str, Any]) -> tuple[list[str], Row]:
    p = d.get("problem", {})
    up, top = d.get("update_speedup"), d.get("topk_speedup")
    lines = [f"DDAN's ID pool at {p.get('num_ids', '?')} identities x {p.get('dim', '?')}-D, "
             f"batches of {p.get('batch', '?')}: `update` beside a per-sample loop and `topk` "
             "beside recomputing every pooled feature, in the same run. No numeric goal is "
             f"recorded for this suite. Memory of all buffers: {num(d.get('memory_mb'), '.0f')}"
             f" MB; speed-ups: update {num(up, '.1f')}x, topk {num(top, '.1f')}x.", "",
             "| op | implementation | batch | median | IQR | runs |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['op']} | {r['impl']} | {r.get('batch', '-')} | {secs(r['median_s'])} | "
              f"{secs(r.get('iqr_s'))} | {r.get('runs', '-')} |" for r in d["rows"]]
    return lines + [""], ("none recorded (speed-up vs reference)",
                          f"update {num(up, '.1f')}x, topk {num(top, '.1f')}x", "-")


def _cpu_met(r: dict[str, Any], goal: float) -> bool | None:
    v = r.get("overhead_excl_passes_cpu")
    return None if v is None else v <= goal


def dg_overhead(d: dict[str, Any]) -> tuple[list[str], Row]:
    s, goal = d.get("setting", {}), float(d.get("goal_overhead_excl_passes", 0.10))
    rows = d["rows"]
    met = [r["recipe"] for r in rows if r["meets_goal"]]
    cpu_met = [r["recipe"] for r in rows if _cpu_met(r, goal)]
    has_cpu = any(_cpu_met(r, goal) is not None for r in rows)
    size = "x".join(str(v) for v in s.get("size", []))
    lines = [f"One training step of each recipe (its own `train_step`, all DG blocks, fixed "
             f"random batch, augmentation off) vs the plain step of the same backbone (linear "
             f"ID classifier + CE + Adam). Setting `{s.get('name', '?')}`: {s.get('backbone')} "
             f"width {s.get('width')}, B={s.get('batch')}, {size}, {s.get('num_ids')} ids in "
             f"{s.get('num_domains')} domains; CDVM on {s.get('cdvm_backbone')} (its model "
             "wraps a ResNet stem). `passes` = backbone forward + backward passes the method "
             "itself needs, in plain steps; overhead excl. passes = (DG - passes x plain) / "
             f"plain. Goal: <= {goal:.0%}. Wall-time medians of few calls (a step takes "
             "seconds); the process CPU time of the same calls is less disturbed by other jobs "
             "on the shared machine and is shown beside them. On this shared machine the "
             "per-round ratios of one row spread by about +-10% (`ratio_per_round` in the "
             "JSON; history in `benchmarks/README.md`, dg_overhead). "
             f"Memory: {d.get('allocator', 'system allocator')}; "
             f"{d.get('warmup_calls', 1)} untimed calls of each step first.", "",
             f"Meeting the goal (wall time): {', '.join(met) or 'none'}"
             + (f"; by CPU time: {', '.join(cpu_met) or 'none'}" if has_cpu else "") + ".", "",
             "| recipe | backbone | plain step | DG step | DG / plain | passes | overhead "
             "excl. passes | <= goal | CPU-time DG / plain | excl. passes (CPU time) | <= goal "
             "(CPU time) |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['recipe']} | {r['backbone']} | {secs(r['plain_median_s'])} | "
              f"{secs(r['dg_median_s'])} | {r['ratio']:.2f} | {r['passes']:.2f} | "
              f"{r['overhead_excl_passes']:+.1%} | {yes(r['meets_goal'])} | "
              f"{num(r.get('cpu_ratio'))} | "
              + (f"{r['overhead_excl_passes_cpu']:+.1%}" if r.get("overhead_excl_passes_cpu")
                 is not None else "-") + f" | {yes(_cpu_met(r, goal))} |" for r in rows]
    lines += ["", "Passes counted per method:", ""]
    lines += [f"- **{r['recipe']}**: {r['passes_note']}." for r in rows]
    for r in (r for r in rows if r.get("ablation_ratios")):
        lines += ["", f"Where {r['recipe']}'s step time goes: the same step with blocks "
                  "switched off, timed in the same rounds, in plain steps:", "",
                  "| step | time / plain step |", "| --- | --- |"]
        lines += [f"| {name} | {v:.2f} |" for name, v in r["ablation_ratios"].items()]
        lines += [f"| full DG step | {r['ratio']:.2f} |"]
        detail = r.get("passes_detail") or {}
        if detail:
            lines += ["", "FLOPs in plain steps: " + ", ".join(
                f"{k} {v:.2f}" for k, v in detail.items()) + "."]
            bare_t, bare_f = next(iter(r["ablation_ratios"].values())), next(iter(detail.values()))
            lines += ["", f"Time per FLOP: the whole step {r['ratio'] / r['passes']:.2f}x, "
                      f"the first ablation (no blocks) {bare_t / bare_f:.2f}x a plain step's."]
            native = [v for k, v in r["ablation_ratios"].items() if "no-fused-norm" in k]
            if native:
                lines[-1] += (f" With PyTorch's own double backward of batch norm instead of "
                              f"`dgblocks.meta.norm`'s (`--no-fused-norm`) the full step takes "
                              f"{native[0]:.2f} plain steps ({native[0] / r['passes']:.2f}x "
                              "per FLOP): its generic formula makes about 25 passes over every "
                              "feature map, which FLOPs do not count.")
    lines += ["", "Not in a step (not timed): " + "; ".join(
        f"{r['recipe']}: {r['not_per_step']}" for r in rows if r.get("not_per_step", "none")
        != "none") + "."]
    measured = f"{len(met)} / {len(rows)} recipes" + (
        f" (CPU time: {len(cpu_met)} / {len(rows)})" if has_cpu else "")
    return lines + [""], (f"<= {goal:.0%} beyond the method's passes", measured,
                          yes(len(met) == len(rows)))


def throughput(d: dict[str, Any]) -> tuple[list[str], Row]:
    s = d.get("setting", {})
    rows = d["rows"]
    goal = float(d.get("goal_ratio_vs_baseline_gpu", 0.9))
    extra = s.get("extra_compute", {})
    lines = [f"Each recipe run end to end as the leaderboard runs it ({s.get('backbone')}, "
             f"batch {s.get('batch_size')}, N = {s.get('steps')} steps, synthetic data, "
             f"torch threads: {s.get('threads')}, fresh stage-1 caches); images/s = N x batch / "
             "train_seconds, where train_seconds covers building the benchmark "
             f"({secs(d.get('data_seconds'))} here), the models, every training phase "
             "(stage 1 included) and checkpoints, up to the evaluation. The issue's goal, a "
             f"method at >= {goal:.0%} of the plain backbone's images/s, is for a GPU: these "
             "are CPU numbers and the goal is not judged on them.", "",
             "| method | train s | images/s | vs AGG | images/s excl. data | vs AGG excl. data "
             "| compute beyond N steps |", "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['method']} | {r['train_seconds']:.1f} | {r['images_per_s']:.1f} | "
              f"{num(r.get('ratio_vs_baseline'))} | {num(r.get('images_per_s_excl_data'), '.1f')}"
              f" | {num(r.get('ratio_vs_baseline_excl_data'))} | {extra.get(r['method'], '-')} |"
              for r in rows]
    if d.get("failed"):
        lines += ["", "Failed runs: " + ", ".join(d["failed"]) + "."]
    worst = min((r["ratio_vs_baseline"] for r in rows if r.get("ratio_vs_baseline")),
                default=None)
    return lines + [""], (f">= {goal:.0%} of AGG images/s (GPU goal)",
                          f"CPU: lowest {num(worst)} of AGG", "not measured on GPU")


def loader(d: dict[str, Any]) -> tuple[list[str], Row]:
    by = {r["case"]: r for r in d["rows"]}
    per_worker = by["load_image"]["ratio_vs_pil"]
    w0, w2 = by["batches_w0"]["images_per_s"], by["batches_w2"]["images_per_s"]
    lines = ["Decoding a rendered Market-1501-shaped tree (JPEG, 256 x 128, page cache warm, one "
             "torch thread per process): dgblocks' `load_image` and the bag-of-tricks "
             "augmentation (`train_transform`: flip, pad + crop, colour jitter, random erasing) "
             "in one process, i.e. the work of one worker, beside a bare Pillow decode loop; "
             "then `dgblocks.engine.batches.Batches` (random order, batch "
             f"{d.get('batch', '?')}) with 0, 1 and 2 persistent workers, without and with the "
             "per-item augmentation. The cases "
             f"take turns over {d.get('rounds', '?')} rounds (median round shown). Goals: "
             "decoding within 2x of the bare loop per worker; workers add throughput where "
             "cores are free (2 workers >= 0).",
             "", f"`load_image` runs at {per_worker:.2f}x the Pillow loop; 2 workers give "
             f"{w2 / w0:.2f}x the images/s of loading in the training process.", "",
             *table(["case", "workers", "images/s", "vs Pillow loop", "median", "IQR"],
                    [[r["case"], "-" if r.get("workers") is None else r["workers"],
                      f"{r['images_per_s']:.1f}", f"{r['ratio_vs_pil']:.2f}",
                      secs(r["median_s"]), secs(r.get("iqr_s"))] for r in d["rows"]])]
    return lines + [""], ("decode >= 0.5x Pillow loop; 2 workers >= 0",
                          f"{per_worker:.2f}x; {w2 / w0:.2f}x",
                          yes(per_worker >= 0.5 and w2 >= w0))


SECTIONS: dict[str, tuple[str, str, Callable[[dict[str, Any]], tuple[list[str], Row]]]] = {
    "blocks": ("Blocks", "OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE python -m benchmarks.blocks",
               blocks),
    "eval_ranking": ("Evaluation ranking", "OMP_NUM_THREADS=2 python -m benchmarks.eval_ranking",
                     eval_ranking),
    "eval_streaming": ("Evaluation at MSMT17 size",
                       "OMP_NUM_THREADS=2 python -m benchmarks.eval_streaming --threads 2",
                       eval_streaming),
    "central_domain": ("Central domain", "OMP_NUM_THREADS=2 python -m benchmarks.central_domain",
                       central_domain),
    "id_pool": ("ID pool", "python -m benchmarks.id_pool", id_pool),
    "dg_overhead": ("DG overhead per recipe",
                    "OMP_NUM_THREADS=2 python -m benchmarks.dg_overhead", dg_overhead),
    "throughput": ("Training throughput",
                   "OMP_NUM_THREADS=2 python -m benchmarks.throughput", throughput),
    "loader": ("Input pipeline", "python -m benchmarks.loader", loader),
}
