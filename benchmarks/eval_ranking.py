"""evaluate_ranking on a Market-1501-sized problem beside the per-query loop.

Problem: 3,368 queries x 15,913 gallery images, 750 test identities over 6 cameras plus
distractors, distances from noisy identity embeddings (so rankings are realistic). The
reference is the classic per-query evaluation of open-reid/torchreid (``eval_market1501``:
one full ``argsort`` of the matrix, then a Python loop over queries). Both compute step AP and
CMC; the run checks that the numbers agree to 1e-6, then times both.

    python -m benchmarks.eval_ranking
"""

from __future__ import annotations

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


def eval_market1501_loop(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=MAX_RANK):
    """The per-query reference (open-reid / torchreid style)."""
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
        tmp = raw_cmc.cumsum() / (np.arange(len(raw_cmc)) + 1.0)
        all_ap.append((tmp * raw_cmc).sum() / num_rel)
    return np.asarray(all_cmc, dtype=np.float64).mean(0), float(np.mean(all_ap))


def main() -> None:
    d, qp, gp, qc, gc = problem()
    npy = [x.numpy() for x in (d, qp, gp, qc, gc)]
    ours = evaluate_ranking(d, qp, gp, qc, gc, max_rank=MAX_RANK)
    ref_cmc, ref_map = eval_market1501_loop(*npy)
    cmc_err = float(np.abs(ours.cmc - ref_cmc).max())
    map_err = abs(ours.mAP - ref_map)
    if cmc_err > 1e-6 or map_err > 1e-6:
        raise SystemExit(f"mismatch: cmc {cmc_err:.2e}, mAP {map_err:.2e}")
    m_ours = measure("evaluate_ranking(d, qp, gp, qc, gc, max_rank=MAX_RANK)",
                     dict(evaluate_ranking=evaluate_ranking, d=d, qp=qp, gp=gp, qc=qc, gc=gc,
                          MAX_RANK=MAX_RANK), label="ranking", sub_label="market-sized",
                     description="dgblocks", min_run_time=5.0)
    m_ref = measure("eval_market1501_loop(*npy)", dict(eval_market1501_loop=eval_market1501_loop,
                                                       npy=npy),
                    label="ranking", sub_label="market-sized", description="per-query loop",
                    min_run_time=5.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # same thread count as the single-threaded numpy reference
    m_ours1 = measure("evaluate_ranking(d, qp, gp, qc, gc, max_rank=MAX_RANK)",
                      dict(evaluate_ranking=evaluate_ranking, d=d, qp=qp, gp=gp, qc=qc, gc=gc,
                           MAX_RANK=MAX_RANK), label="ranking", sub_label="market-sized",
                      description="dgblocks 1 thread", min_run_time=5.0)
    torch.set_num_threads(threads)
    ratio = m_ref.median / m_ours.median
    rows = [{"case": "market-sized 3368x15913", "impl": "dgblocks.evaluate_ranking",
             "threads": threads, **summary(m_ours)},
            {"case": "market-sized 3368x15913", "impl": "dgblocks.evaluate_ranking",
             "threads": 1, **summary(m_ours1)},
            {"case": "market-sized 3368x15913", "impl": "per-query loop (numpy)",
             **summary(m_ref)}]
    extra = {"speedup": ratio, "speedup_1_thread": m_ref.median / m_ours1.median,
             "max_abs_diff_cmc": cmc_err, "abs_diff_mAP": map_err,
             "mAP": ours.mAP, "R1": float(ours.cmc[0]), "valid_queries": ours.num_valid_queries}
    path = write_results("eval_ranking", rows, extra)
    print(f"dgblocks {m_ours.median:.3f}s ({m_ours1.median:.3f}s on 1 thread), loop"
          f" {m_ref.median:.3f}s, speedup {ratio:.1f}x;"
          f" mAP {ours.mAP:.4f} (diff {map_err:.1e}), R1 {ours.cmc[0]:.4f}; wrote {path}")


if __name__ == "__main__":
    main()
