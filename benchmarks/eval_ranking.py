"""evaluate_ranking on a Market-1501-sized problem beside the per-query loop.

Problem: 3,368 queries x 15,913 gallery images, 750 test identities over 6 cameras plus
distractors, distances from noisy identity embeddings (so rankings are realistic: about 9% of
the gallery lies before a query's last true match). Both sides get the same input, the
precomputed float64 (Q, G) distance matrix and the label arrays; computing the distances is in
neither timing. The reference is the classic per-query evaluation of open-reid/torchreid
(``eval_market1501``: one full ``argsort`` of the matrix, then a Python loop over queries),
unchanged except that it can also return the trapezoid AP (checked, not timed). The run checks
that CMC, step mAP and trapezoid mAP agree to 1e-6, then times both in step mode.

    python -m benchmarks.eval_ranking
"""

from __future__ import annotations

import os

import numpy as np
import torch

from benchmarks._meta import measure, summary, write_results
from dgblocks.distances import euclidean_distance
from dgblocks.eval import evaluate_ranking

NUM_Q, NUM_G, NUM_IDS, NUM_CAMS, MAX_RANK = 3368, 15913, 750, 6, 50


def problem(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(NUM_IDS + 1, 64, generator=g)
    q_pids = torch.randint(0, NUM_IDS, (NUM_Q,), generator=g)
    g_pids = torch.cat([torch.arange(NUM_IDS), torch.randint(0, NUM_IDS + 1, (NUM_G - NUM_IDS,),
                                                             generator=g)])
    q_cams = torch.randint(0, NUM_CAMS, (NUM_Q,), generator=g)
    g_cams = torch.randint(0, NUM_CAMS, (NUM_G,), generator=g)
    qf = centers[q_pids] + 1.2 * torch.randn(NUM_Q, 64, generator=g)
    gf = centers[g_pids] + 1.2 * torch.randn(NUM_G, 64, generator=g)
    # float64: no exact ties, so any tie rule gives the same numbers
    return euclidean_distance(qf.double(), gf.double()), q_pids, g_pids, q_cams, g_cams


def eval_market1501_loop(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=MAX_RANK,
                         ap_mode="step"):
    """The per-query reference (open-reid / torchreid style); ``"trapezoid"``: Market MATLAB."""
    num_q, _ = distmat.shape
    indices = np.argsort(distmat, axis=1)
    matches = (g_pids[indices] == q_pids[:, np.newaxis]).astype(np.int32)
    all_cmc, all_ap = [], []
    for q_idx in range(num_q):
        order = indices[q_idx]
        remove = (g_pids[order] == q_pids[q_idx]) & (g_camids[order] == q_camids[q_idx])
        raw_cmc = matches[q_idx][~remove]
        if not np.any(raw_cmc):
            continue
        cmc = raw_cmc.cumsum()
        cmc[cmc > 1] = 1
        all_cmc.append(cmc[:max_rank])
        num_rel = raw_cmc.sum()
        if ap_mode == "step":
            tmp = raw_cmc.cumsum() / (np.arange(len(raw_cmc)) + 1.0)
            all_ap.append((tmp * raw_cmc).sum() / num_rel)
        else:  # mean of the precision just before and at each match
            pos = np.flatnonzero(raw_cmc)  # 0-based ranks of the matches
            hits = np.arange(1, num_rel + 1)
            before = np.where(pos > 0, (hits - 1) / np.maximum(pos, 1), 1.0)
            all_ap.append(((before + hits / (pos + 1.0)) / 2).mean())
    return np.asarray(all_cmc, dtype=np.float64).mean(0), float(np.mean(all_ap))


def main() -> None:
    d, qp, gp, qc, gc = problem()
    npy = [x.numpy() for x in (d, qp, gp, qc, gc)]
    load_before = os.getloadavg()
    ours = evaluate_ranking(d, qp, gp, qc, gc, max_rank=MAX_RANK)
    ref_cmc, ref_map = eval_market1501_loop(*npy)
    cmc_err = float(np.abs(ours.cmc - ref_cmc).max())
    map_err = abs(ours.mAP - ref_map)
    trap = evaluate_ranking(d, qp, gp, qc, gc, max_rank=MAX_RANK, ap_mode="trapezoid")
    trap_cmc, trap_map = eval_market1501_loop(*npy, ap_mode="trapezoid")
    trap_err = abs(trap.mAP - trap_map)
    cmc_err = max(cmc_err, float(np.abs(trap.cmc - trap_cmc).max()))
    if cmc_err > 1e-6 or map_err > 1e-6 or trap_err > 1e-6:
        raise SystemExit(f"mismatch: cmc {cmc_err:.2e}, mAP {map_err:.2e}, trapezoid mAP"
                         f" {trap_err:.2e}")
    m_ours = measure("evaluate_ranking(d, qp, gp, qc, gc, max_rank=MAX_RANK)",
                     dict(evaluate_ranking=evaluate_ranking, d=d, qp=qp, gp=gp, qc=qc, gc=gc,
                          MAX_RANK=MAX_RANK), label="ranking", sub_label="market-sized",
                     description="dgblocks", min_run_time=5.0)
    m_ref = measure("eval_market1501_loop(*npy)", dict(eval_market1501_loop=eval_market1501_loop,
                                                       npy=npy),
                    label="ranking", sub_label="market-sized", description="per-query loop",
                    min_run_time=10.0)  # a few runs of the ~3 s loop, so it has a median
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # same thread count as the single-threaded numpy reference
    m_ours1 = measure("evaluate_ranking(d, qp, gp, qc, gc, max_rank=MAX_RANK)",
                      dict(evaluate_ranking=evaluate_ranking, d=d, qp=qp, gp=gp, qc=qc, gc=gc,
                           MAX_RANK=MAX_RANK), label="ranking", sub_label="market-sized",
                      description="dgblocks 1 thread", min_run_time=5.0)
    torch.set_num_threads(threads)
    ratio = m_ref.median / m_ours.median
    rows = [{"case": "market-sized 3368x15913", "impl": "dgblocks.eval.evaluate_ranking",
             "threads": threads, **summary(m_ours)},
            {"case": "market-sized 3368x15913", "impl": "dgblocks.eval.evaluate_ranking",
             "threads": 1, **summary(m_ours1)},
            {"case": "market-sized 3368x15913", "impl": "per-query loop (numpy)",
             **summary(m_ref)}]
    extra = {"speedup": ratio, "speedup_1_thread": m_ref.median / m_ours1.median,
             "input": "precomputed float64 distance matrix (same for both; distances untimed)",
             "max_abs_diff_cmc": cmc_err, "abs_diff_mAP": map_err,
             "abs_diff_mAP_trapezoid": trap_err, "mAP": ours.mAP, "mAP_trapezoid": trap.mAP,
             "R1": float(ours.cmc[0]), "valid_queries": ours.num_valid_queries,
             "load_avg_1_5_15_before": list(load_before),
             "load_avg_1_5_15_after": list(os.getloadavg())}
    path = write_results("eval_ranking", rows, extra)
    print(f"dgblocks {m_ours.median:.3f}s ({m_ours1.median:.3f}s on 1 thread), loop"
          f" {m_ref.median:.3f}s, speedup {ratio:.1f}x ({extra['speedup_1_thread']:.1f}x on 1"
          f" thread); mAP {ours.mAP:.4f} (diff {map_err:.1e}, trapezoid {trap_err:.1e}),"
          f" R1 {ours.cmc[0]:.4f}; load {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f};"
          f" wrote {path}")


if __name__ == "__main__":
    main()
