"""Unusual but valid input to dgblocks.eval is computed correctly (the rejected kinds are in
tests/test_bad_input.py): negative ids, integer or shifted distances, other integer dtypes,
empty index lists, tuples of targets, integer features; and evaluate_benchmark's details."""

import numpy as np
import pytest
import torch

from dgblocks.distances import pairwise_distance
from dgblocks.eval import (
    SplitEvaluation,
    encode_dataset,
    evaluate_benchmark,
    evaluate_ranking,
)
from dgblocks.protocols import build_benchmark
from tests.eval.test_ranking import random_problem
from tests.eval.test_streaming import assert_same


@pytest.fixture(scope="module")
def bench():
    return build_benchmark("synthetic", smoke=True)


def test_negative_ids_and_cameras_are_labels():
    d, qp, gp, qc, gc = random_problem(3, q=20, g=80)
    assert_same(evaluate_ranking(d, qp - 50, gp - 50, qc - 9, gc - 9),
                evaluate_ranking(d, qp, gp, qc, gc))


def test_integer_shifted_and_negative_distances():
    d, qp, gp, qc, gc = random_problem(4, q=20, g=80)
    ref = evaluate_ranking(np.round(d * 100), qp, gp, qc, gc)
    assert_same(evaluate_ranking((np.round(d * 100)).astype(np.int64), qp, gp, qc, gc), ref)
    assert_same(evaluate_ranking(np.round(d * 100) - 1000, qp, gp, qc, gc), ref)  # monotone


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.uint8])
def test_label_dtypes(dtype):
    d, qp, gp, qc, gc = random_problem(5, q=15, g=60)
    assert_same(evaluate_ranking(d, *(x.astype(dtype) for x in (qp, gp, qc, gc))),
                evaluate_ranking(d, qp, gp, qc, gc))


def test_infinite_distances_rank_last():
    d = torch.tensor([[float("inf"), 0.5, 0.2]])
    r = evaluate_ranking(d, [0], [0, 1, 0], [0], [1, 1, 1], max_rank=3)
    assert r.cmc.tolist() == [1.0, 1.0, 1.0] and r.mAP == pytest.approx((1 + 2 / 3) / 2)


def test_encode_dataset_index_forms(bench):
    enc = lambda x: x.flatten(1)  # noqa: E731
    ds = bench.train
    ref = encode_dataset(enc, ds, index=torch.tensor([3, 0, 5]))
    assert torch.equal(encode_dataset(enc, ds, index=[3, 0, 5]), ref)
    assert torch.equal(encode_dataset(enc, ds, index=np.array([3, 0, 5], dtype=np.int32)), ref)
    assert torch.equal(ref, encode_dataset(enc, ds)[[3, 0, 5]])
    assert encode_dataset(enc, ds, index=[]).shape == (0, 0)  # no images: no features


def test_evaluate_benchmark_tuple_targets_and_integer_features(bench):
    enc = lambda x: x.flatten(1)  # noqa: E731
    assert evaluate_benchmark(enc, tuple(bench.targets), progress=False) == \
        evaluate_benchmark(enc, bench.targets, progress=False)
    ints = evaluate_benchmark(lambda x: (x.flatten(1) * 4).round().long(), bench.targets,
                              progress=False)  # integer features are cast to float32
    assert all(0 <= r["R1"] <= 100 for r in ints.values())


def test_evaluate_benchmark_details_match_a_direct_ranking(bench):
    enc = lambda x: x.flatten(1)  # noqa: E731
    metrics, details = evaluate_benchmark(enc, bench.targets, progress=False,
                                          return_details=True)
    assert metrics == evaluate_benchmark(enc, bench.targets, progress=False)
    for t in bench.targets:
        assert len(details[t.name]) == len(t.splits)
        for (q, g), split in zip(t.splits, details[t.name]):
            assert isinstance(split, SplitEvaluation)
            assert torch.equal(split.query_features, encode_dataset(enc, q))
            assert torch.equal(split.gallery_features, encode_dataset(enc, g))
            direct = evaluate_ranking(pairwise_distance(split.query_features,
                                                        split.gallery_features),
                                      q.pids, g.pids, q.camids, g.camids)
            assert_same(split.result, direct)
        assert metrics[t.name]["R1"] == pytest.approx(
            np.mean([100 * s.result.cmc[0] for s in details[t.name]]))
