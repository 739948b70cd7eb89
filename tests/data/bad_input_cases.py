"""Bad-input cases of dgblocks.data and dgblocks.protocols (issue #27 and a wide probe: wrong
types, empty, negative, fractional, NaN, huge). ``DATA_CASES`` joins the table of
tests/test_bad_input.py (public names of the packages it walks); ``EXTRA_CASES`` covers the
submodules' names (transforms, datasets, render_tree, check, the engine's batches) and runs in
tests/data/test_bad_input_data.py. A case is ``(id, call, argument)``: ``call()`` raises a
``ValueError`` naming ``argument``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from dgblocks import data as D
from dgblocks import protocols as P

NAN, HUGE = float("nan"), 10**12
Case = tuple[str, Callable[[], Any], str]


def c(fn: Callable, *a: Any, **k: Any) -> Callable[[], Any]:
    return lambda: fn(*a, **k)


@functools.cache
def bench() -> Any:
    return P.build_benchmark("synthetic", smoke=True)


def ds(n: int = 4, **kw: Any) -> D.ReIDDataset:
    base = dict(pids=torch.arange(n), camids=torch.zeros(n, dtype=torch.long)) | kw
    return D.ReIDDataset(torch.zeros(n, 3, 4, 2, dtype=torch.uint8), **base)


def _bench(**kw: Any) -> D.Benchmark:
    b = bench()
    base = dict(name="b", train=b.train, num_ids=b.num_ids, num_domains=b.num_domains,
                domain_names=b.domain_names, targets=b.targets) | kw
    return D.Benchmark(**base)


LONG = torch.tensor([0, 1])
DATA_CASES: dict[str, list[Case]] = {
    # dgblocks.data --------------------------------------------------------------------------
    "ReIDDataset": [
        ("frac-pid", c(ds, 2, pids=[0.5, 1.0]), "pids"), ("nan-pid", c(ds, 2, pids=[0, NAN]), "pids"),
        ("neg-cam", c(ds, 2, camids=[-1, 0]), "camids"), ("neg-dom", c(ds, 2, domains=[0, -1]),
                                                          "domains"),
        ("ts", c(ds, 2, timestamps=[-2, 0]), "timestamps"), ("str", c(ds, 2, pids="ab"), "pids"),
        ("size", c(D.ReIDDataset, paths=["a.jpg"], pids=[0], camids=[0],
                   image_size=(10**6, 10**6)), "image_size"),
        ("paths", c(D.ReIDDataset, paths="a.jpg", pids=[0], camids=[0]), "paths"),
        ("name", c(ds, 2, name=3), "name"), ("transform", c(ds, 2, transform=3), "transform")],
    "TargetDomain": [("splits", c(D.TargetDomain, "t", [(1, 2)]), "splits"),
                     ("empty", c(D.TargetDomain, "t", []), "splits"),
                     ("name", c(lambda: D.TargetDomain(None, [(ds(), ds())])), "name"),
                     ("task", c(lambda: D.TargetDomain("t", [(ds(), ds())], task="x")), "task")],
    "Benchmark": [("train", c(_bench, train="x"), "train"), ("num_ids", c(_bench, num_ids=-1),
                                                               "num_ids"),
                  ("frac", c(_bench, num_domains=0.5), "num_domains"),
                  ("names", c(_bench, domain_names=[1]), "domain_names"),
                  ("targets", c(_bench, targets=["x"]), "targets"),
                  ("task", c(_bench, task="gps"), "task"), ("info", c(_bench, info=[]), "info")],
    "load_image": [("size", c(D.load_image, "x.png", size=(10**6, 10**6)), "size"),
                   ("size-frac", c(D.load_image, "x.png", size=(4.5, 2)), "size"),
                   ("path", c(D.load_image, None), "path")],
    "normalize_input": [("int", c(D.normalize_input, torch.zeros(2, dtype=torch.uint8)), "x")],
    "image_size": [("none", c(D.image_size, None), "dataset"),
                   ("str", c(D.image_size, "x"), "dataset")],
    "synthetic_reid": [("config", c(D.synthetic_reid, "x"), "config"),
                       ("seed", c(D.synthetic_reid, smoke=True, seed=0.5), "seed"),
                       ("smoke", c(D.synthetic_reid, smoke="yes"), "smoke"),
                       ("size", c(D.synthetic_reid, smoke=True, image_size=8), "image_size")],
    "SyntheticReIDConfig": [("neg", c(D.SyntheticReIDConfig, train_ids=-1), "train_ids"),
                            ("frac", c(D.SyntheticReIDConfig, eval_ids=2.5), "eval_ids"),
                            ("huge", c(D.SyntheticReIDConfig, train_ids=HUGE), "train_ids"),
                            ("nan", c(D.SyntheticReIDConfig, spurious=NAN), "spurious"),
                            ("size", c(D.SyntheticReIDConfig, image_size=None), "image_size")],
    "time_period": [("frac", c(D.time_period, torch.tensor([400.5])), "timestamps"),
                    ("neg", c(D.time_period, torch.tensor([-1])), "timestamps"),
                    ("type", c(D.time_period, [400]), "timestamps")],
    "rotated_digits": [("seed", c(D.rotated_digits, seed=NAN), "seed"),
                       ("smoke", c(D.rotated_digits, smoke=1), "smoke"),
                       ("per_class", c(D.rotated_digits, per_class="x"), "per_class")],
    "RandomIdentitySampler": [
        ("empty", c(D.RandomIdentitySampler, [], batch_size=4), "pids"),
        ("frac", c(D.RandomIdentitySampler, [0.5, 1.5], batch_size=2, num_instances=1), "pids"),
        ("generator", c(D.RandomIdentitySampler, LONG, batch_size=2, num_instances=1,
                        generator=3), "generator"),
        ("seed", c(D.RandomIdentitySampler, LONG, batch_size=2, num_instances=1, seed=0.5),
         "seed"), ("huge", c(D.RandomIdentitySampler, LONG, batch_size=HUGE), "batch_size")],
    "DomainBalancedSampler": [
        ("empty", c(D.DomainBalancedSampler, [], [], batch_size=4), "pids"),
        ("seed", c(D.DomainBalancedSampler, LONG, LONG, batch_size=2, num_instances=1,
                   seed="x"), "seed")],
    "DatasetBalancedSampler": [
        ("empty", c(D.DatasetBalancedSampler, []), "domains"),
        ("empty-long", c(D.DatasetBalancedSampler, torch.tensor([], dtype=torch.long)),
         "domains"),
        ("huge", c(D.DatasetBalancedSampler, LONG, batch_size=HUGE), "batch_size")],
    # dgblocks.protocols (added to the existing cases) ---------------------------------------
    "build_benchmark": [("protocol", c(P.build_benchmark, "synthetic", protocol="protocol1",
                                       smoke=True), "protocol"),
                        ("seed", c(P.build_benchmark, "synthetic", seed=0.5), "seed"),
                        ("smoke", c(P.build_benchmark, "synthetic", smoke="no"), "smoke"),
                        ("size", c(P.build_benchmark, "real", root=".",
                                   image_size=(10**6, 10**6)), "image_size"),
                        ("root-type", c(P.build_benchmark, "real", root=3), "root")],
    "parse_protocol": [("type", c(P.parse_protocol, 5), "protocol"),
                       ("none", c(P.parse_protocol, None), "protocol"),
                       ("direct-empty", c(P.parse_protocol, "direct:M->"), "protocol")],
    "build_protocol": [("root", c(P.build_protocol, "protocol1", root=None), "root")],
    "real_direct": [("type", c(P.real_direct, 5, "."), "protocol")],
    "leave_one_out": [("bench", c(P.leave_one_out, "x", 0), "bench"),
                      ("frac", c(lambda: P.leave_one_out(bench(), 0.5)), "source")],
    "single_source": [("bench", c(P.single_source, None, 0), "bench")],
    "hold_out_identities": [("ds", c(P.hold_out_identities, "x", 1), "ds"),
                            ("generator", c(lambda: P.hold_out_identities(
                                bench().train, 1, generator=1)), "generator")],
    "source_domains": [("bench", c(P.source_domains, []), "bench"),
                       ("frac", c(lambda: P.source_domains(bench(), source=0.5)), "source")],
    "nuisance_labels": [("neg-camera", c(P.nuisance_labels, "joint", torch.tensor([-1]),
                                         torch.tensor([2]), periods=3), "camera"),
                        ("neg-period", c(P.nuisance_labels, "joint", torch.tensor([1]),
                                         torch.tensor([-1]), periods=3), "period"),
                        ("period-range", c(P.nuisance_labels, "time", LONG, torch.tensor([3]),
                                           periods=3), "period"),
                        ("frac", c(P.nuisance_labels, "camera", torch.tensor([0.5]), LONG,
                                   periods=3), "camera"),
                        ("length", c(P.nuisance_labels, "joint", LONG, torch.tensor([1]),
                                     periods=3), "period")],
    "skew_fractions": [("frac", c(P.skew_fractions, torch.tensor([0.5]), 0.5), "labels"),
                       ("nan", c(P.skew_fractions, LONG, NAN), "skew")],
    "skew_by": [("ds", c(P.skew_by, "x", LONG, 0.5), "ds")],
    "kept_per_class": [("frac", c(P.kept_per_class, torch.tensor([0.5]), LONG), "before")],
    "prepare_nuisances": [("ds", c(P.prepare_nuisances, None, kind="camera", skew=0.0,
                                   synthetic=True), "ds"),
                          ("synthetic", c(lambda: P.prepare_nuisances(
                              ds(), kind="camera", skew=0.0, synthetic="no")), "synthetic")],
    "time_periods": [("empty", c(P.time_periods, torch.tensor([], dtype=torch.long),
                                 synthetic=False), "timestamps"),
                     ("frac", c(P.time_periods, torch.tensor([0.5]), synthetic=False),
                      "timestamps"),
                     ("synthetic", c(P.time_periods, LONG, synthetic="no"), "synthetic")],
}


def _extra() -> dict[str, list[Case]]:
    from dgblocks._dist import shard
    from dgblocks.data import transforms as T
    from dgblocks.data.check import check_data, unmatched_queries
    from dgblocks.data.datasets import compose_sources, load_dataset, to_dataset
    from dgblocks.data.render_tree import plan_dataset, render_tree
    from dgblocks.engine.batches import Batches, default_workers, random_sampler

    def batches(**kw: Any) -> Any:
        b = Batches(**(dict(dataset=ds(), batch_size=2, sampler=random_sampler(4)) | kw))
        return next(b)

    return {
        "Resize": [("size", c(T.Resize, (10**6, 10**6)), "size"), ("none", c(T.Resize, None),
                                                                 "size")],
        "PadCrop": [("frac", c(T.PadCrop, 0.5), "padding"), ("huge", c(T.PadCrop, HUGE),
                                                           "padding")],
        "HorizontalFlip": [("nan", c(T.HorizontalFlip, NAN), "p"),
                           ("generator", c(T.HorizontalFlip, generator="g"), "generator")],
        "ColorJitter": [("str", c(T.ColorJitter, "x"), "brightness"),
                        ("nan", c(T.ColorJitter, contrast=NAN), "contrast")],
        "RandomErasing": [("scale", c(T.RandomErasing, scale=(0.5, 0.1)), "scale"),
                          ("ratio", c(T.RandomErasing, ratio=(0, 1)), "ratio"),
                          ("value", c(T.RandomErasing, value=NAN), "value")],
        "Normalize": [("std", c(T.Normalize, (0.5,), (0.0,)), "std"),
                      ("empty", c(T.Normalize, (), ()), "mean")],
        "train_transform": [("size", c(T.train_transform, None), "size"),
                            ("erase", c(T.train_transform, (8, 4), erase=2.0), "erase"),
                            ("jitter", c(T.train_transform, (8, 4), jitter="no"), "jitter")],
        "eval_transform": [("size", c(T.eval_transform, (0, 4)), "size")],
        "load_dataset": [("name", c(load_dataset, [], "."), "name"),
                         ("root", c(load_dataset, "M", None), "root")],
        "compose_sources": [("sources", c(compose_sources, 3), "sources"),
                            ("empty", c(compose_sources, []), "sources")],
        "to_dataset": [("records", c(to_dataset, None), "records"),
                       ("domain", c(to_dataset, [], domain=-1), "domain")],
        "render_tree": [("root", c(render_tree, None, datasets=["viper"]), "root"),
                        ("datasets", c(render_tree, ".", datasets=3), "datasets"),
                        ("jobs", c(render_tree, ".", datasets=["viper"], jobs=HUGE), "jobs"),
                        ("scale", c(render_tree, ".", datasets=["viper"], scale=True), "scale"),
                        ("overwrite", c(render_tree, ".", datasets=["viper"], overwrite=1),
                         "overwrite")],
        "plan_dataset": [("name", c(plan_dataset, "nope"), "datasets"),
                         ("seed", c(plan_dataset, "viper", seed=0.5), "seed")],
        "check_data": [("build", c(check_data, None), "build"),
                       ("progress", c(check_data, lambda: bench(), progress=3), "progress")],
        "unmatched_queries": [("query", c(unmatched_queries, None, ds()), "query")],
        "Batches": [("workers", c(batches, workers=HUGE), "workers"),
                    ("prefetch", c(batches, prefetch=HUGE), "prefetch"),
                    ("seed", c(batches, seed=0.5), "seed"),
                    ("sampler", c(batches, sampler=None), "sampler"),
                    ("index", c(batches, sampler=random_sampler(9)), "sampler"),
                    ("dataset", c(batches, dataset=3), "dataset"),
                    ("pin_memory", c(batches, pin_memory="yes"), "pin_memory")],
        "shard": [("world", c(shard, [0, 1], 0, 0), "world"), ("rank", c(shard, [0, 1], 2, 2),
                                                              "rank"),
                  ("batch", c(shard, None, 0, 1), "batch")],
        "default_workers": [("cpus", c(default_workers, ds(), cpus=0), "cpus"),
                            ("world", c(default_workers, ds(), world_size=0.5), "world_size")],
    }


EXTRA_CASES = _extra()
