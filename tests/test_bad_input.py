"""Bad-input contract: every public callable rejects bad input with a ``ValueError`` subclass
whose message names the argument (docs/conventions.md, "Errors").

The table walks ``__all__`` of the public packages; a new public name without an entry (or a
documented reason in ``NOT_CALLABLE``) fails :func:`test_every_public_name_has_cases`, so new
blocks inherit the contract. A case is ``(id, call, argument)``: ``call()`` must raise a
``ValueError`` whose message starts with, or names, ``argument``. Case ids starting with
``nan`` run under ``dgblocks.checks(nan=True)`` (the switchable NaN checks); the
central-domain inputs and IDPool updates are checked whatever the switch says.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import types
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import dgblocks
import dgblocks.functional as DF
from dgblocks import domains as Do
from dgblocks import eval as E
from dgblocks import layers as Y
from dgblocks import losses as L
from dgblocks import memory as M
from dgblocks import meta as Me
from dgblocks import protocols as P
from dgblocks import sampling as S
from tests.data.bad_input_cases import DATA_CASES

PACKAGES = ["dgblocks.functional", "dgblocks.losses", "dgblocks.layers", "dgblocks.memory",
            "dgblocks.sampling", "dgblocks.domains", "dgblocks.meta", "dgblocks.eval",
            "dgblocks.protocols", "dgblocks.distances", "dgblocks.methods", "dgblocks.data"]

# Public names that are not blocks taking user input (documented reason per name).
NOT_CALLABLE = {
    "BNNeckOutput": "result NamedTuple, built by BNNeck", "Metric": "a typing.Literal",
    "DisentangledOutput": "result NamedTuple", "GlobalLocalOutput": "result NamedTuple",
    "SubspaceOutput": "result NamedTuple", "PoolNeighbours": "result NamedTuple",
    "BackdoorResult": "result NamedTuple", "CentralDomain": "result NamedTuple",
    "METHODS": "a tuple of names", "MetaOutput": "result NamedTuple",
    "ProtocolSpec": "parsed result of parse_protocol (a frozen dataclass)",
    "PairedDifference": "result NamedTuple of paired_difference", "NUISANCES": "a tuple of names",
    "SplitEvaluation": "result NamedTuple of evaluate_benchmark(return_details=True)",
    "DOMAIN_LABELS": "a tuple of names",
    "Batch": "a NamedTuple the engine hands to Method.update",
    "ADVERSARIAL_LOSSES": "a tuple of names",
}

N, K, D = 8, 5, 6
NAN = float("nan")


def f(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


def i(*shape: int) -> torch.Tensor:  # an integer tensor where floats are needed
    return torch.ones(*shape, dtype=torch.long)


def nan(*shape: int) -> torch.Tensor:
    t = torch.randn(*shape)
    t.view(-1)[0] = NAN
    return t


def y(high: int = K, n: int = N) -> torch.Tensor:
    return torch.arange(n) % high


def c(fn: Callable, *a: Any, **k: Any) -> Callable[[], Any]:
    return lambda: fn(*a, **k)


@functools.cache
def bench() -> Any:
    return P.build_benchmark("synthetic", smoke=True)


def _bn(**k: Any) -> Any:
    return DF.batch_norm_train(k.pop("x", f(N, 3, 4)), k.pop("w", torch.ones(3)),
                               k.pop("b", torch.zeros(3)), **k)


def _pool(**k: Any) -> M.IDPool:
    return M.IDPool(**{"num_ids": K, "dim": D, "num_domains": 2, "k": 2, "central": 0, **k})


def _pool_nan_update() -> None:
    pool = _pool()
    before = pool.state_dict()
    before = {n: t.clone() for n, t in before.items()}
    try:
        pool.update(nan(N, D), labels=y(), domains=y(2))
    finally:  # the pool is unchanged by a refused update
        for n, t in pool.state_dict().items():
            assert torch.equal(t, before[n]), n


def _ranking() -> Any:
    return E.evaluate_ranking(torch.tensor([[0.1, 0.2]]), [0], [0, 1], [0], [1, 1], max_rank=2)


_D2 = torch.tensor([[0.1, 0.2]])
_QF, _GF = torch.randn(3, D), torch.randn(5, D)
_LAB = (torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2, 0, 1]), torch.zeros(3, dtype=torch.long),
        torch.ones(5, dtype=torch.long))


def _rank(qf: Any = None, gf: Any = None, *labels: Any, **k: Any) -> Any:
    """rank_features on a small valid problem with one part replaced."""
    lab = list(_LAB)
    lab[:len(labels)] = labels
    return E.rank_features(_QF if qf is None else qf, _GF if gf is None else gf, *lab, **k)


def _enc(**k: Any) -> Any:
    return E.encode_dataset(k.pop("encode", lambda x: x.flatten(1)), k.pop("ds", bench().train),
                            **k)


def _evb(targets: Any = None, **k: Any) -> Any:
    return E.evaluate_benchmark(k.pop("encode", lambda x: x.flatten(1)),
                                bench().targets if targets is None else targets,
                                progress=False, **k)


def _splits() -> Any:
    from dgblocks.data.datasets import DatasetSplits
    return DatasetSplits(name="x", train=[], query=[], gallery=[])


def _dist_fn(fn: Callable) -> list:
    return [("int", c(fn, i(N, D)), "x"), ("y-int", c(fn, f(N, D), i(3, D)), "y"),
            ("shape", c(fn, f(N)), "x"), ("y-dim", c(fn, f(N, D), f(3, D + 1)), "y"),
            ("nan", c(fn, nan(N, D)), "x"), ("nan-y", c(fn, f(N, D), nan(3, D)), "y")]


_M = nn.Linear(3, 2)
CASES: dict[str, list[tuple[str, Callable[[], Any], str]]] = {
    # distances -----------------------------------------------------------------------------
    "pairwise_distance": _dist_fn(DF.pairwise_distance)
    + [("metric", c(DF.pairwise_distance, f(N, D), metric="l1"), "metric")],
    "euclidean_distance": _dist_fn(DF.euclidean_distance),
    "squared_euclidean_distance": _dist_fn(DF.squared_euclidean_distance),
    "cosine_distance": _dist_fn(DF.cosine_distance),
    "cosine_similarity_matrix": _dist_fn(DF.cosine_similarity_matrix),
    # entropies -----------------------------------------------------------------------------
    "neg_entropy": [
        ("int", c(DF.neg_entropy, i(N, K)), "logits"), ("shape", c(DF.neg_entropy, f(N)), "logits"),
        ("no-class", c(DF.neg_entropy, f(N, 0)), "logits"),
        ("weights-shape", c(DF.neg_entropy, f(N, K), weights=f(K + 1)), "weights"),
        ("weights-neg", c(DF.neg_entropy, f(N, K), weights=-torch.ones(K)), "weights"),
        ("weights-nan", c(DF.neg_entropy, f(N, K), weights=nan(K)), "weights"),
        ("reduction", c(DF.neg_entropy, f(N, K), reduction="avg"), "reduction"),
        ("nan", c(DF.neg_entropy, nan(N, K)), "logits")],
    "calibrated_neg_entropy": [
        ("int", c(DF.calibrated_neg_entropy, i(N, K), torch.ones(K) / K), "logits"),
        ("prior-neg", c(DF.calibrated_neg_entropy, f(N, K), torch.full((K,), -0.2)), "prior"),
        ("prior-nan", c(DF.calibrated_neg_entropy, f(N, K), nan(K).abs()), "prior"),
        ("prior-int", c(DF.calibrated_neg_entropy, f(N, K), i(K)), "prior"),
        ("prior-shape", c(DF.calibrated_neg_entropy, f(N, K), torch.ones(K + 1)), "prior"),
        ("labels-range", c(DF.calibrated_neg_entropy, f(N, K), torch.ones(K), labels=y(K + 2),
                           focal=True), "labels"),
        ("labels-missing", c(DF.calibrated_neg_entropy, f(N, K), torch.ones(K), focal=True),
         "labels"),
        ("nan", c(DF.calibrated_neg_entropy, nan(N, K), torch.ones(K)), "logits")],
    "class_prior": [("float", c(DF.class_prior, f(N), K), "labels"),
                    ("range", c(DF.class_prior, y(K + 1), K), "labels"),
                    ("empty", c(DF.class_prior, y(n=0), K), "labels"),
                    ("num_classes", c(DF.class_prior, y(), 0), "num_classes")],
    "NegEntropy": [("reduction", c(L.NegEntropy, reduction="avg"), "reduction"),
                   ("int", c(lambda: L.NegEntropy()(i(N, K))), "logits"),
                   ("nan", c(lambda: L.NegEntropy()(nan(N, K))), "logits")],
    "CalibratedNegEntropy": [
        ("prior-neg", c(L.CalibratedNegEntropy, prior=torch.tensor([-0.1, 1.1])), "prior"),
        ("prior-nan", c(L.CalibratedNegEntropy, prior=torch.tensor([NAN, 1.0])), "prior"),
        ("prior-empty", c(L.CalibratedNegEntropy, prior=torch.ones(0)), "prior"),
        ("prior-int", c(L.CalibratedNegEntropy, prior=i(K)), "prior"),
        ("reduction", c(L.CalibratedNegEntropy, prior=torch.ones(K), reduction="x"), "reduction"),
        ("logits-int", c(lambda: L.CalibratedNegEntropy(prior=torch.ones(K))(i(N, K))), "logits"),
        ("num_classes", c(L.CalibratedNegEntropy.from_labels, y(), num_classes=2), "labels")],
    # reversal, cross entropies, KL -----------------------------------------------------------
    "grad_reverse": [("coeff-neg", c(DF.grad_reverse, f(N, D), -1.0), "coeff"),
                     ("coeff-nan", c(DF.grad_reverse, f(N, D), NAN), "coeff"),
                     ("x", c(DF.grad_reverse, [1.0], 1.0), "x")],
    "dann_coeff": [("gamma", c(DF.dann_coeff, 0.5, gamma=-1.0), "gamma"),
                   ("hi-nan", c(DF.dann_coeff, 0.5, hi=NAN), "hi"),
                   ("p", c(DF.dann_coeff, "x"), "p")],
    "reverse_cross_entropy": [
        ("int", c(DF.reverse_cross_entropy, i(N, K), y()), "logits"),
        ("labels", c(DF.reverse_cross_entropy, f(N, K), y(K + 1)), "labels"),
        ("coeff", c(DF.reverse_cross_entropy, f(N, K), y(), coeff=-1.0), "coeff"),
        ("nan", c(DF.reverse_cross_entropy, nan(N, K), y()), "logits")],
    "label_smoothing_ce": [
        ("int", c(DF.label_smoothing_ce, i(N, K), y()), "logits"),
        ("labels", c(DF.label_smoothing_ce, f(N, K), y(K + 1)), "labels"),
        ("epsilon", c(DF.label_smoothing_ce, f(N, K), y(), eps=1.5), "eps"),
        ("nan", c(DF.label_smoothing_ce, nan(N, K), y()), "logits")],
    "smoothed_target_entropy": [("epsilon", c(DF.smoothed_target_entropy, K, 1.5), "eps"),
                                ("num_classes", c(DF.smoothed_target_entropy, 0, 0.1),
                                 "num_classes")],
    "symmetric_kl": [("int", c(DF.symmetric_kl, i(N, K), f(N, K)), "a"),
                     ("b-int", c(DF.symmetric_kl, f(N, K), i(N, K)), "b"),
                     ("b-shape", c(DF.symmetric_kl, f(N, K), f(N + 1, K)), "b"),
                     ("tau", c(DF.symmetric_kl, f(N, K), f(N, K), tau=0.0), "tau"),
                     ("nan", c(DF.symmetric_kl, nan(N, K), f(N, K)), "a")],
    "ReverseCrossEntropy": [("coeff", c(L.ReverseCrossEntropy, coeff=-1.0), "coeff"),
                            ("int", c(lambda: L.ReverseCrossEntropy()(i(N, K), y())), "logits")],
    "LabelSmoothingCE": [("epsilon", c(L.LabelSmoothingCE, eps=-0.1), "eps"),
                         ("int", c(lambda: L.LabelSmoothingCE()(i(N, K), y())), "logits")],
    "SymmetricKL": [("tau", c(L.SymmetricKL, tau=-1.0), "tau"),
                    ("int", c(lambda: L.SymmetricKL(tau=1.0)(i(N, K), f(N, K))), "a")],
    # metric losses ---------------------------------------------------------------------------
    "triplet_loss": [("int", c(DF.triplet_loss, i(N, D), y(4)), "features"),
                     ("labels-len", c(DF.triplet_loss, f(N, D), y(4, N + 1)), "labels"),
                     ("labels-float", c(DF.triplet_loss, f(N, D), f(N)), "labels"),
                     ("margin", c(DF.triplet_loss, f(N, D), y(4), margin=-0.1), "margin"),
                     ("metric", c(DF.triplet_loss, f(N, D), y(4), metric="l1"), "metric"),
                     ("nan", c(DF.triplet_loss, nan(N, D), y(4)), "features")],
    "batch_hard_mining": [("int", c(DF.batch_hard_mining, i(N, N), y(4)), "dist"),
                          ("shape", c(DF.batch_hard_mining, f(N, N + 1), y(4)), "dist"),
                          ("labels", c(DF.batch_hard_mining, f(N, N), y(4, N - 1)), "labels"),
                          ("nan", c(DF.batch_hard_mining, nan(N, N), y(4)), "dist")],
    "TripletLoss": [("margin", c(L.TripletLoss, margin=-1.0), "margin"),
                    ("mining", c(L.TripletLoss, mining="all"), "mining"),
                    ("metric", c(L.TripletLoss, metric="l1"), "metric"),
                    ("int", c(lambda: L.TripletLoss()(i(N, D), y(4))), "features")],
    "center_loss": [("int", c(DF.center_loss, i(N, D), y(), f(K, D)), "features"),
                    ("centers-int", c(DF.center_loss, f(N, D), y(), i(K, D)), "centers"),
                    ("labels", c(DF.center_loss, f(N, D), y(K + 1), f(K, D)), "labels"),
                    ("centers-dim", c(DF.center_loss, f(N, D), y(), f(K, D + 1)), "centers"),
                    ("nan", c(DF.center_loss, nan(N, D), y(), f(K, D)), "features"),
                    ("nan-centers", c(DF.center_loss, f(N, D), y(), nan(K, D)), "centers")],
    "CenterLoss": [("num_classes", c(L.CenterLoss, num_classes=0, dim=D), "num_classes"),
                   ("dim", c(L.CenterLoss, num_classes=K, dim=-1), "dim"),
                   ("int", c(lambda: L.CenterLoss(num_classes=K, dim=D)(i(N, D), y())),
                    "features"),
                   ("nan-centers", c(lambda: L.CenterLoss(num_classes=K, dim=D).requires_grad_(
                       False).apply(lambda m: m.centers.fill_(NAN))(f(N, D), y())), "centers")],
    "parameter_cosine": [
        ("int", c(DF.parameter_cosine, i(3), f(3)), "params_a"),
        ("shapes", c(DF.parameter_cosine, f(3), f(4)), "params_b"),
        ("empty", c(DF.parameter_cosine, [], [f(3)]), "params_a"),
        ("reduction", c(DF.parameter_cosine, f(3), f(3), reduction="x"), "reduction"),
        ("nan", c(DF.parameter_cosine, nan(3), f(3)), "params_a"),
        ("nan-b", c(DF.parameter_cosine, f(3), nan(3)), "params_b")],
    "ParameterCosine": [("reduction", c(L.ParameterCosine, reduction="x"), "reduction"),
                        ("pairs", c(lambda: L.ParameterCosine()([_M])), "modules_a"),
                        ("int", c(lambda: L.ParameterCosine()(i(3), f(3))), "params_a")],
    "subspace_diversity": [("int", c(DF.subspace_diversity, i(N, 4)), "W"),
                           ("shape", c(DF.subspace_diversity, f(N)), "W"),
                           ("m1", c(DF.subspace_diversity, f(N, 4), m1=-0.1), "m1"),
                           ("nan", c(DF.subspace_diversity, nan(N, 4)), "W")],
    "subspace_consistency": [("int", c(DF.subspace_consistency, i(N, 4)), "W"),
                             ("labels", c(DF.subspace_consistency, f(N, 4), y(n=N - 1)), "labels"),
                             ("m2", c(DF.subspace_consistency, f(N, 4), m2=-0.1), "m2"),
                             ("nan", c(DF.subspace_consistency, nan(N, 4)), "W")],
    "SubspaceDiversity": [("m1", c(L.SubspaceDiversity, m1=-1.0), "m1"),
                          ("int", c(lambda: L.SubspaceDiversity()(i(N, 4))), "W")],
    "SubspaceConsistency": [("m2", c(L.SubspaceConsistency, m2=-1.0), "m2"),
                            ("int", c(lambda: L.SubspaceConsistency()(i(N, 4))), "W")],
    "consistency_loss": [("int", c(DF.consistency_loss, i(N, D), f(N, D)), "v_ij"),
                         ("v_ik-int", c(DF.consistency_loss, f(N, D), i(N, D)), "v_ik"),
                         ("v_ik-shape", c(DF.consistency_loss, f(N, D), f(N + 1, D)), "v_ik"),
                         ("nan", c(DF.consistency_loss, nan(N, D), f(N, D)), "v_ij")],
    "ConsistencyLoss": [("reduction", c(L.ConsistencyLoss, reduction="x"), "reduction"),
                        ("int", c(lambda: L.ConsistencyLoss()(i(N, D), f(N, D))), "v_ij")],
    # backdoor --------------------------------------------------------------------------------
    "backdoor_adjustment": [("int", c(DF.backdoor_adjustment, i(N, D), f(N, D), k=2), "s"),
                            ("v-int", c(DF.backdoor_adjustment, f(N, D), i(N, D), k=2), "v"),
                            ("k", c(DF.backdoor_adjustment, f(N, D), f(N, D), k=N), "k"),
                            ("v-len", c(DF.backdoor_adjustment, f(N, D), f(N - 1, D), k=2), "v"),
                            ("nan", c(DF.backdoor_adjustment, nan(N, D), f(N, D), k=2), "s")],
    "backdoor_indices": [("int", c(DF.backdoor_indices, i(N, D), k=2), "v"),
                         ("k", c(DF.backdoor_indices, f(N, D), k=0), "k"),
                         ("strategy", c(DF.backdoor_indices, f(N, D), k=2, strategy="x"),
                          "strategy"),
                         ("alpha", c(DF.backdoor_indices, f(N, D), k=2, alpha=2.0), "alpha"),
                         ("nan", c(DF.backdoor_indices, nan(N, D), k=2), "v")],
    "backdoor_pairs": [
        ("int", c(DF.backdoor_pairs, i(N, D), f(N, D), i(N, 2, 2), f(N, 2)), "s"),
        ("index-dtype", c(DF.backdoor_pairs, f(N, D), f(N, D), f(N, 2, 2), f(N, 2)), "index"),
        ("weight-int", c(DF.backdoor_pairs, f(N, D), f(N, D), i(N, 2, 2), i(N, 2)), "weight"),
        ("nan", c(DF.backdoor_pairs, f(N, D), nan(N, D), i(N, 2, 2), f(N, 2)), "v"),
        ("nan-weight", c(DF.backdoor_pairs, f(N, D), f(N, D), i(N, 2, 2), nan(N, 2)), "weight")],
    "backdoor_linear": [
        ("int", c(DF.backdoor_linear, i(N, D), f(N, D), i(N, 2, 2), f(N, 2), f(K, 2 * D)), "s"),
        ("head", c(DF.backdoor_linear, f(N, D), f(N, D), i(N, 2, 2), f(N, 2), f(K, D)),
         "head_weight"),
        ("bias", c(DF.backdoor_linear, f(N, D), f(N, D), i(N, 2, 2), f(N, 2), f(K, 2 * D),
                   f(K + 1)), "head_bias"),
        ("nan", c(DF.backdoor_linear, nan(N, D), f(N, D), i(N, 2, 2), f(N, 2), f(K, 2 * D)),
         "s")],
    "BackdoorAdjustment": [("k", c(S.BackdoorAdjustment, k=0), "k"),
                           ("strategy", c(S.BackdoorAdjustment, k=2, strategy="x"), "strategy"),
                           ("mixhard", c(S.BackdoorAdjustment, k=1, strategy="mixhard"), "k"),
                           ("alpha", c(S.BackdoorAdjustment, k=2, alpha=-1.0), "alpha"),
                           ("int", c(lambda: S.BackdoorAdjustment(k=2)(i(N, D), f(N, D))), "s")],
    # style -----------------------------------------------------------------------------------
    "domain_style_moments": [
        ("int", c(DF.domain_style_moments, i(N, D, 2, 2), y(2), num_domains=2), "x"),
        ("shape", c(DF.domain_style_moments, f(N, D), y(2), num_domains=2), "x"),
        ("domains", c(DF.domain_style_moments, f(N, D, 2, 2), y(3), num_domains=2), "domains"),
        ("num_domains", c(DF.domain_style_moments, f(N, D, 2, 2), y(2), num_domains=0),
         "num_domains"),
        ("nan", c(DF.domain_style_moments, nan(N, D, 2, 2), y(2), num_domains=2), "x")],
    "expand_style_moments": [
        ("int", c(DF.expand_style_moments, i(2, D), f(2, D), torch.ones(2, dtype=torch.bool),
                  f(2, D), f(2, D)), "mu"),
        ("present", c(DF.expand_style_moments, f(2, D), f(2, D), torch.tensor([True, False]),
                      f(2, D), f(2, D)), "present"),
        ("sigma", c(DF.expand_style_moments, f(2, D), f(3, D), torch.ones(2, dtype=torch.bool),
                    f(2, D), f(2, D)), "sigma"),
        ("nan", c(DF.expand_style_moments, f(2, D), f(2, D), torch.ones(2, dtype=torch.bool),
                  nan(2, D), f(2, D)), "eps_mu")],
    "cross_domain_style": [
        ("int", c(DF.cross_domain_style, i(N, D, 2, 2), y(2), f(2, D), f(2, D), num_domains=2),
         "x"),
        ("one-domain", c(DF.cross_domain_style, f(N, D, 2, 2), y(1), f(2, D), f(2, D),
                         num_domains=2), "domains"),
        ("eps", c(DF.cross_domain_style, f(N, D, 2, 2), y(2), f(2, D), f(2, D), num_domains=2,
                  eps=-1.0), "eps"),
        ("nan", c(DF.cross_domain_style, nan(N, D, 2, 2), y(2), f(2, D), f(2, D),
                  num_domains=2), "x")],
    "CrossDomainStyle": [("num_domains", c(Y.CrossDomainStyle, num_domains=1), "num_domains"),
                         ("eps", c(Y.CrossDomainStyle, num_domains=2, eps=-1.0), "eps"),
                         ("domains", c(lambda: Y.CrossDomainStyle(num_domains=2)(f(N, D, 2, 2))),
                          "domains"),
                         ("nan", c(lambda: Y.CrossDomainStyle(num_domains=2)(nan(N, D, 2, 2),
                                                                             y(2))), "x")],
    "StyleFusion": [("channels", c(Y.StyleFusion, channels=0), "channels"),
                    ("int", c(lambda: Y.StyleFusion(channels=D)(i(N, D, 2, 2), f(N, D, 2, 2))),
                     "f_inv"),
                    ("shape", c(lambda: Y.StyleFusion(channels=D)(f(N, D, 2, 2), f(N, D, 3, 2))),
                     "f_sty"),
                    ("nan", c(lambda: Y.StyleFusion(channels=D)(f(N, D, 2, 2), nan(N, D, 2, 2))),
                     "f_sty")],
    # layers ----------------------------------------------------------------------------------
    "GradientReversal": [("coeff", c(Y.GradientReversal, coeff=-1.0), "coeff"),
                         ("both", c(Y.GradientReversal, coeff=1.0, schedule=Y.ConstantSchedule()),
                          "schedule"),
                         ("schedule", c(Y.GradientReversal, schedule=nn.Linear(1, 1)), "schedule")],
    "ConstantSchedule": [("value", c(Y.ConstantSchedule, value=-1.0), "value"),
                         ("value-nan", c(Y.ConstantSchedule, value=NAN), "value")],
    "DannSchedule": [("max_steps", c(Y.DannSchedule, max_steps=0), "max_steps"),
                     ("gamma", c(Y.DannSchedule, max_steps=10, gamma=-1.0), "gamma"),
                     ("lo", c(Y.DannSchedule, max_steps=10, lo=-1.0), "lo"),
                     ("hi", c(Y.DannSchedule, max_steps=10, hi=-1.0, lo=0.0), "hi")],
    "BNNeck": [("dim", c(Y.BNNeck, dim=0, num_classes=K), "dim"),
               ("num_classes", c(Y.BNNeck, dim=D, num_classes=0), "num_classes"),
               ("int", c(lambda: Y.BNNeck(dim=D, num_classes=K)(i(N, D))), "x"),
               ("dim-x", c(lambda: Y.BNNeck(dim=D, num_classes=K)(f(N, D + 1))), "x"),
               ("one", c(lambda: Y.BNNeck(dim=D, num_classes=K)(f(1, D))), "x"),
               ("nan", c(lambda: Y.BNNeck(dim=D, num_classes=K)(nan(N, D))), "x")],
    "DisentangledEncoders": [
        ("same", c(lambda: Y.DisentangledEncoders(encoder_s=_M, encoder_v=_M, dim=2, num_ids=K,
                                                  num_domains=2)), "encoder_v"),
        ("dim", c(Y.DisentangledEncoders, encoder_s=nn.Linear(3, 2), encoder_v=nn.Linear(3, 2),
                  dim=0, num_ids=K, num_domains=2), "dim"),
        ("out", c(lambda: Y.DisentangledEncoders(
            encoder_s=nn.Linear(D, 3), encoder_v=nn.Linear(D, 2), dim=2, num_ids=K,
            num_domains=2)(f(N, D))), "encoder_s output")],
    "GlobalLocalBlock": [
        ("make_block", c(Y.GlobalLocalBlock, make_block=None, num_domains=2), "make_block"),
        ("num_domains", c(Y.GlobalLocalBlock, make_block=lambda: nn.Linear(D, 2), num_domains=0),
         "num_domains"),
        ("domains", c(lambda: Y.GlobalLocalBlock(make_block=lambda: nn.Linear(D, 2),
                                                 num_domains=2)(f(N, D), y(3))), "domains")],
    "SubspaceHypernet": [("groups", c(Y.SubspaceHypernet, channels=16, groups=5), "groups"),
                         ("channels", c(Y.SubspaceHypernet, channels=0), "channels"),
                         ("int", c(lambda: Y.SubspaceHypernet(channels=16)(i(N, 16))), "x"),
                         ("shape", c(lambda: Y.SubspaceHypernet(channels=16)(f(N, 8))), "x"),
                         ("nan", c(lambda: Y.SubspaceHypernet(channels=16)(nan(N, 16))), "x")],
    "CentralDomainDiscriminator": [
        ("in_dim", c(Y.CentralDomainDiscriminator, in_dim=0), "in_dim"),
        ("int", c(lambda: Y.CentralDomainDiscriminator(in_dim=D)(i(N, D))), "x"),
        ("nan", c(lambda: Y.CentralDomainDiscriminator(in_dim=D)(nan(N, D))), "x")],
    "NuisanceHeads": [("sizes", c(Y.NuisanceHeads, in_dim=D, sizes=[1]), "sizes"),
                      ("sizes-empty", c(Y.NuisanceHeads, in_dim=D, sizes=[]), "sizes"),
                      ("int", c(lambda: Y.NuisanceHeads(in_dim=D, sizes=[2])(i(N, D))), "x"),
                      ("nan", c(lambda: Y.NuisanceHeads(in_dim=D, sizes=[2])(nan(N, D))), "x")],
    # memory ----------------------------------------------------------------------------------
    "IDPool": [("num_ids", c(_pool, num_ids=1, k=1), "num_ids"),
               ("k", c(_pool, k=K), "k"), ("alpha", c(_pool, alpha=1.5), "alpha"),
               ("alpha-nan", c(_pool, alpha=NAN), "alpha"),
               ("central", c(_pool, central=2), "central"),
               ("int", c(lambda: _pool()(i(N, D), labels=y(), domains=y(2))), "features"),
               ("labels", c(lambda: _pool()(f(N, D), labels=y(K + 1), domains=y(2))), "labels"),
               ("domains", c(lambda: _pool()(f(N, D), labels=y(), domains=y(3))), "domains"),
               ("unset", c(lambda: _pool(central=None)(f(N, D), labels=y(), domains=y(2))),
                "central"),
               ("update-nan", _pool_nan_update, "features")],
    # domains ---------------------------------------------------------------------------------
    "wasserstein_matrix": [
        ("one", c(Do.wasserstein_matrix, [f(4, D)]), "features_by_domain"),
        ("int", c(Do.wasserstein_matrix, [f(4, D), i(4, D)]), "features_by_domain[1]"),
        ("dim", c(Do.wasserstein_matrix, [f(4, D), f(4, D + 1)]), "features_by_domain[1]"),
        ("empty", c(Do.wasserstein_matrix, [f(4, D), f(0, D)]), "features_by_domain[1]"),
        ("method", c(Do.wasserstein_matrix, [f(4, D), f(4, D)], method="x"), "method"),
        ("reg", c(Do.wasserstein_matrix, [f(4, D), f(4, D)], reg=0.0), "reg"),
        ("always-nan", c(Do.wasserstein_matrix, [f(4, D), nan(4, D)], method="emd"),
         "features_by_domain[1]")],
    "central_domain": [
        ("always-nan", c(Do.central_domain, [nan(4, D), f(4, D), f(4, D)], method="emd"),
         "features_by_domain[0]"),
        ("int", c(Do.central_domain, [i(4, D), f(4, D)]), "features_by_domain[0]"),
        ("max_samples", c(Do.central_domain, [f(4, D), f(4, D)], max_samples=0), "max_samples")],
    "central_from_distances": [
        ("shape", c(Do.central_from_distances, [[0.0, 1.0]]), "distances"),
        ("empty", c(Do.central_from_distances, torch.zeros(0, 0)), "distances"),
        ("nan", c(Do.central_from_distances, [[0.0, NAN], [NAN, 0.0]]), "distances"),
        ("negative", c(Do.central_from_distances, [[0.0, -1.0], [-1.0, 0.0]]), "distances")],
    # meta ------------------------------------------------------------------------------------
    "meta_objective": [
        ("inner_lr", c(DF.meta_objective, lambda p, b: p["w"].sum(), {"w": f(2)}, 0, 0,
                       inner_lr=-1.0), "inner_lr"),
        ("params", c(DF.meta_objective, lambda p, b: p["w"].sum(), {}, 0, 0, inner_lr=0.1),
         "params")],
    "MetaObjective": [("inner_lr", c(Me.MetaObjective, inner_lr=-1.0), "inner_lr")],
    "module_params": [("module", c(Me.module_params, "x"), "module")],
    "module_loss": [("module", c(Me.module_loss, "x", lambda out: out), "module"),
                    ("loss", c(Me.module_loss, _M, "x"), "loss")],
    "batch_norm_train": [("one-value", c(_bn, x=f(1, 3)), "x"),
                         ("momentum", c(_bn, momentum=2.0), "momentum"),
                         ("momentum-none", c(_bn, momentum=None), "momentum"),
                         ("running-f64", c(_bn, running_mean=torch.zeros(3, dtype=torch.float64),
                                           running_var=torch.ones(3, dtype=torch.float64)),
                          "running_mean"),
                         ("int", c(_bn, x=i(N, 3, 4)), "x"),
                         ("weight", c(_bn, w=f(4)), "weight"),
                         ("eps", c(_bn, eps=-1.0), "eps"),
                         ("nan", c(_bn, x=nan(N, 3, 4)), "x")],
    "FusedNormDoubleBackward": [
        ("one-value", c(lambda: Me.FusedNormDoubleBackward().__enter__() and None
                        or _fused_bn(f(1, 3))), "x")],
    "MetaDomainSplitter": [("num_domains", c(Me.MetaDomainSplitter, num_domains=1), "num_domains"),
                           ("num_test", c(Me.MetaDomainSplitter, num_domains=3, num_test=3),
                            "num_test")],
    # eval ------------------------------------------------------------------------------------
    "evaluate_ranking": [
        ("nan", c(E.evaluate_ranking, torch.tensor([[NAN, 0.2]]), [0], [0, 1], [0], [1, 1]),
         "distmat"),
        ("pids", c(E.evaluate_ranking, torch.tensor([[0.1, 0.2]]), [0], [0], [0], [1, 1]),
         "g_pids"),
        ("float-pids", c(E.evaluate_ranking, torch.tensor([[0.1, 0.2]]), [0.5], [0, 1], [0],
                         [1, 1]), "q_pids"),
        ("max_rank", c(E.evaluate_ranking, torch.tensor([[0.1, 0.2]]), [0], [0, 1], [0], [1, 1],
                       max_rank=0), "max_rank"),
        ("bool", c(E.evaluate_ranking, _D2 > 0.15, [0], [0, 1], [0], [1, 1]), "distmat"),
        ("str", c(E.evaluate_ranking, "d", [0], [0, 1], [0], [1, 1]), "distmat"),
        ("ragged", c(E.evaluate_ranking, [[0.1, 0.2], [0.3]], [0, 1], [0, 1], [0, 0], [1, 1]),
         "distmat"),
        ("empty", c(E.evaluate_ranking, torch.zeros(0, 2), _LAB[0][:0], [0, 1], _LAB[0][:0],
                    [1, 1]), "distmat"),
        ("1-D", c(E.evaluate_ranking, _D2[0], [0], [0, 1], [0], [1, 1]), "distmat"),
        ("none-pids", c(E.evaluate_ranking, _D2, None, [0, 1], [0], [1, 1]), "q_pids"),
        ("str-pids", c(E.evaluate_ranking, _D2, ["a"], [0, 1], [0], [1, 1]), "q_pids"),
        ("length", c(E.evaluate_ranking, _D2, [0], [0, 1], [0], [1, 1, 1]), "g_camids"),
        ("bool-cams", c(E.evaluate_ranking, _D2, [0], [0, 1], [True], [1, 1]), "q_camids"),
        ("nan-ssg", c(E.evaluate_ranking, torch.tensor([[NAN, 0.2]]), [0], [0, 1], [0], [1, 1],
                      single_gallery_shot=True), "distmat"),
        ("ssg-type", c(E.evaluate_ranking, _D2, [0], [0, 1], [0], [1, 1],
                       single_gallery_shot="yes"), "single_gallery_shot"),
        ("seed", c(E.evaluate_ranking, _D2, [0], [0, 1], [0], [1, 1], seed="0"), "seed"),
        ("generator", c(E.evaluate_ranking, _D2, [0], [0, 1], [0], [1, 1], generator=0),
         "generator"),
        ("chunk_size", c(E.evaluate_ranking, _D2, [0], [0, 1], [0], [1, 1], chunk_size=0),
         "chunk_size"),
        ("num_draws", c(E.evaluate_ranking, _D2, [0], [0, 1], [0], [1, 1], num_draws=0),
         "num_draws"),
        ("ap_mode", c(E.evaluate_ranking, _D2, [0], [0, 1], [0], [1, 1], ap_mode=None),
         "ap_mode"),
        ("invalid_query", c(E.evaluate_ranking, _D2, [0], [0, 1], [0], [1, 1],
                            invalid_query="drop"), "invalid_query")],
    "rank_features": [
        ("str", c(_rank, "x"), "query_features"), ("list", c(_rank, _QF.tolist()),
                                                   "query_features"),
        ("int", c(_rank, i(3, D)), "query_features"), ("int-g", c(_rank, None, i(5, D)),
                                                       "gallery_features"),
        ("1-D", c(_rank, f(D)), "query_features"),
        ("dim", c(_rank, None, f(5, D + 1)), "gallery_features"),
        ("empty", c(_rank, f(0, D), None, torch.zeros(0, dtype=torch.long)), "query_features"),
        ("empty-g", c(_rank, None, f(0, D)), "gallery_features"),
        ("nan", c(_rank, nan(3, D)), "query_features"), ("nan-g", c(_rank, None, nan(5, D)),
                                                         "gallery_features"),
        ("inf", c(_rank, torch.full((3, D), float("inf"))), "query_features"),
        ("overflow", c(_rank, f(3, D) * 1e30, f(5, D) * 1e30), "query_features"),
        ("dtype", c(_rank, None, _GF.double()), "gallery_features"),
        ("length", c(_rank, None, None, *_LAB[:3], _LAB[3][:4]), "g_camids"),
        ("q-length", c(_rank, None, None, _LAB[0][:2]), "q_pids"),
        ("float-pids", c(_rank, None, None, _LAB[0].float()), "q_pids"),
        ("none-pids", c(_rank, None, None, _LAB[0], None), "g_pids"),
        ("no-match", c(_rank, None, None, _LAB[0] + 10), "g_pids"),
        ("metric", c(_rank, metric="l1"), "metric"),
        ("max_rank", c(_rank, max_rank=0), "max_rank"),
        ("ap_mode", c(_rank, ap_mode="x"), "ap_mode"),
        ("invalid_query", c(_rank, invalid_query="drop"), "invalid_query"),
        ("chunk_size", c(_rank, chunk_size=0), "chunk_size"),
        ("chunk-float", c(_rank, chunk_size=2.0), "chunk_size"),
        ("block_bytes", c(_rank, block_bytes=0), "block_bytes"),
        ("num_draws", c(_rank, single_gallery_shot=True, num_draws=0), "num_draws"),
        ("generator", c(_rank, single_gallery_shot=True, generator="g"), "generator"),
        ("ssg-type", c(_rank, single_gallery_shot=1), "single_gallery_shot")],
    "RankingResult": [("rank0", c(lambda: _ranking().rank(0)), "k"),
                      ("rank-neg", c(lambda: _ranking().rank(-1)), "k"),
                      ("rank-big", c(lambda: _ranking().rank(3)), "k"),
                      ("rank-str", c(lambda: _ranking().rank("1")), "k"),
                      ("ranks-str", c(lambda: _ranking().as_dict(ranks="R1")), "ranks"),
                      ("ranks-0", c(lambda: _ranking().as_dict(ranks=(0,))), "ranks")],
    "cmc_curve": [("result", c(E.cmc_curve, [1.0, 2.0]), "result"),
                  ("none", c(E.cmc_curve, None), "result")],
    "summarize_splits": [("empty", c(E.summarize_splits, []), "rows"),
                         ("keys", c(E.summarize_splits, [{"R1": 1.0}, {"mAP": 2.0}]), "rows[1]"),
                         ("str", c(E.summarize_splits, [{"R1": "x"}]), "values"),
                         ("nan", c(E.summarize_splits, [{"R1": NAN}]), "values"),
                         ("dict", c(E.summarize_splits, {"R1": 1.0}), "rows"),
                         ("none", c(E.summarize_splits, None), "rows"),
                         ("none-row", c(E.summarize_splits, [None]), "rows[0]")],
    "worst_domain": [("empty", c(E.worst_domain, {}), "results"),
                     ("flat", c(E.worst_domain, {"a": 1.0}), "results"),
                     ("key", c(E.worst_domain, {"a": {"R1": 1.0}}, "mAP"), "key"),
                     ("key-type", c(E.worst_domain, {"a": {"R1": 1.0}}, 3), "key"),
                     ("nan", c(E.worst_domain, {"a": {"R1": NAN}}), "metrics")],
    "summarize": [("empty", c(E.summarize, {}), "metrics"),
                  ("list", c(E.summarize, [1.0]), "metrics"),
                  ("flat", c(E.summarize, {"a": 1.0}), "metrics"),
                  ("str", c(E.summarize, {"a": {"R1": "x"}}), "metrics"),
                  ("nan", c(E.summarize, {"a": {"R1": NAN}}), "metrics"),
                  ("keys", c(E.summarize, {"a": {"R1": 1.0}}, "R1"), "keys")],
    "mean_std": [("empty", c(E.mean_std, []), "values"),
                 ("none", c(E.mean_std, None), "values"),
                 ("inf", c(E.mean_std, [1.0, float("inf")]), "values"),
                 ("bool", c(E.mean_std, [True]), "values"),
                 ("nan", c(E.mean_std, [1.0, NAN]), "values"),
                 ("str", c(E.mean_std, ["x"]), "values")],
    "format_table": [("empty", c(E.format_table, {}), "results"),
                     ("flat", c(E.format_table, {"a": 1.0}), "results"),
                     ("none", c(E.format_table, None), "results"),
                     ("mixed", c(E.format_table, {"a": {"R1": 1.0}, "b": {"acc": 2.0}}),
                      "results['b']"),
                     ("title", c(E.format_table, {"a": {"R1": 1.0}}, title=3), "title"),
                     ("std", c(E.format_table, {"a": {"R1": 1.0}}, std="no"), "std")],
    "encode_dataset": [("batch_size", c(_enc, batch_size=0), "batch_size"),
                       ("batch-float", c(_enc, batch_size=2.0), "batch_size"),
                       ("index-neg", c(_enc, index=torch.tensor([0, -1])), "index"),
                       ("index-big", c(_enc, index=torch.tensor([10**6])), "index"),
                       ("index-float", c(_enc, index=torch.tensor([0.0])), "index"),
                       ("index-bool", c(_enc, index=torch.ones(3, dtype=torch.bool)), "index"),
                       ("index-2d", c(_enc, index=torch.zeros(2, 2, dtype=torch.long)), "index"),
                       ("index-str", c(_enc, index="0"), "index"),
                       ("encode", c(_enc, encode=None), "encode"),
                       ("encode-shape", c(_enc, encode=lambda x: x), "encode"),
                       ("encode-nan", c(_enc, encode=lambda x: x.flatten(1) * NAN), "encode"),
                       ("ds", c(_enc, ds="x"), "ds"),
                       ("device", c(_enc, device="nope"), "device")],
    "evaluate_benchmark": [("metric", c(_evb, metric="l1"), "metric"),
                           ("targets", c(E.evaluate_benchmark, lambda x: x, []), "targets"),
                           ("targets-str", c(_evb, "tgt"), "targets"),
                           ("targets-dict", c(lambda: _evb({t.name: t for t in bench().targets})),
                            "targets"),
                           ("targets-item", c(_evb, ["tgt"]), "targets[0]"),
                           ("encode", c(_evb, encode=None), "encode"),
                           ("encode-nan", c(_evb, encode=lambda x: x.flatten(1) * NAN), "encode"),
                           ("classify", c(_evb, classify="x"), "classify"),
                           ("batch_size", c(_evb, batch_size="8"), "batch_size"),
                           ("device", c(_evb, device="nope"), "device"),
                           ("ap_mode", c(_evb, ap_mode="x"), "ap_mode"),
                           ("return_details", c(_evb, return_details=1), "return_details")],
    # protocols -------------------------------------------------------------------------------
    "build_benchmark": [("data", c(P.build_benchmark, "nope"), "data"),
                        ("root", c(P.build_benchmark, "real"), "root")],
    "parse_protocol": [("protocol", c(P.parse_protocol, "protocol9"), "protocol")],
    "build_protocol": [("protocol", c(P.build_protocol, "nope", root="."), "protocol")],
    "real_direct": [("protocol", c(P.real_direct, "market", "."), "protocol")],
    "target_domain": [("ds", c(P.target_domain, "market", domain=0), "ds"),
                      ("domain", c(lambda: P.target_domain(_splits(), domain=-1)), "domain"),
                      ("no-test", c(lambda: P.target_domain(_splits(), domain=0)), "target")],
    "leave_one_out": [("source", c(lambda: P.leave_one_out(bench(), 5)), "source")],
    "single_source": [("source", c(lambda: P.single_source(bench(), -1)), "source")],
    "hold_out_identities": [("num_ids", c(lambda: P.hold_out_identities(bench().train, 0)),
                             "num_ids")],
    "relabel_identities": [("ds", c(P.relabel_identities, "x"), "ds")],
    "skew_by": [("skew", c(lambda: P.skew_by(bench().train, torch.zeros(len(bench().train)),
                                             1.0)), "skew")],
    "domain_cosine_similarity": [
        ("empty", c(Do.domain_cosine_similarity, []), "features_by_domain"),
        ("int", c(Do.domain_cosine_similarity, [i(4, 3), f(4, 3)]), "features_by_domain"),
        ("dims", c(Do.domain_cosine_similarity, [f(4, 3), f(4, 2)]), "features_by_domain")],
    "domain_table": [("size", c(Do.domain_table, ["a", "b"], [[1.0]], title="t"), "matrix")],
    "paired_wasserstein": [
        ("count", c(Do.paired_wasserstein, [f(6, 3)], [f(6, 3), f(6, 3)]), "after"),
        ("nan", c(Do.paired_wasserstein, [nan(6, 3)], [f(6, 3)]), "before")],
    "encode_domains": [("domains", c(lambda: Do.encode_domains(
        lambda x: x.flatten(1), bench().train, 0)), "num_domains")],
    "cameras_as_domains": [("bench", c(P.cameras_as_domains, None), "bench")],
    "source_domains": [
        ("domains", c(lambda: P.source_domains(bench(), domains="gps")), "domains"),
        ("source", c(lambda: P.source_domains(bench(), source=99)), "source")],
    "split_by_domain": [("ds", c(P.split_by_domain, None), "ds")],
    "nuisance_labels": [("kind", c(P.nuisance_labels, "gps", i(2), i(2), periods=3), "kind")],
    "nuisance_sizes": [("kind", c(P.nuisance_sizes, "gps", 2, 3), "kind"),
                       ("cameras", c(P.nuisance_sizes, "camera", 0, 3), "cameras")],
    "skew_fractions": [("skew", c(P.skew_fractions, i(3), 1.5), "skew")],
    "kept_per_class": [("shape", c(P.kept_per_class, i(2, 2), i(2)), "before")],
    "prepare_nuisances": [("kind", c(lambda: P.prepare_nuisances(
        bench().train, kind="gps", skew=0.0, synthetic=True)), "kind")],
    "paired_difference": [
        ("confidence", c(E.paired_difference, [1.0, 2.0], [1.0, 2.0], confidence=2.0),
         "confidence"), ("length", c(E.paired_difference, [1.0], [1.0, 2.0]), "b"),
        ("nan", c(E.paired_difference, [NAN, 1.0], [1.0, 2.0]), "a"),
        ("none", c(E.paired_difference, None, [1.0]), "a"),
        ("str", c(E.paired_difference, "ab", "cd"), "a"),
        ("nested", c(E.paired_difference, [[1.0, 2.0]], [[1.0, 2.0]]), "a[0]"),
        ("bool", c(E.paired_difference, [1.0, 2.0], [True, 2.0]), "b[0]"),
        ("kind", c(E.paired_difference, {0: 1.0}, [1.0]), "b")],
    "time_periods": [("periods", c(P.time_periods, torch.zeros(3), synthetic=False, periods=0),
                      "periods"),
                     ("unknown", c(P.time_periods, -torch.ones(3), synthetic=False),
                      "timestamps")],
}


# Issue 27 (no silent wrong value, no foreign exception): each case below returned a wrong
# value silently or raised an IndexError/RuntimeError/TypeError/... from inside torch before.
INF = float("inf")


def meta(*shape: int) -> torch.Tensor:  # a tensor on another device than the rest
    return torch.randn(*shape, device="meta")


def h(*shape: int) -> torch.Tensor:  # a float16 input for a float32 block
    return torch.randn(*shape).half()


def _index(value: int) -> torch.Tensor:
    index = torch.zeros(N, 2, 2, dtype=torch.long)
    index[0, 0, 0] = value
    return index


def _load(module: nn.Module, **entries: Any) -> nn.Module:
    module.load_state_dict({**module.state_dict(), **entries})
    return module


def _pool_twice(first: list[int], second: list[int]) -> None:
    pool = _pool()  # identity 0 first seen in domain first[0], then in another domain
    pool.update(f(len(first), D), labels=torch.zeros(len(first), dtype=torch.long),
                domains=torch.tensor(first))
    pool.update(f(len(second), D), labels=torch.zeros(len(second), dtype=torch.long),
                domains=torch.tensor(second))


def _splitter(**state: Any) -> None:
    s = Me.MetaDomainSplitter(num_domains=3)
    s.load_state_dict({**s.state_dict(), **state})


_B = (f(N, D), f(N, 3))  # identity and domain factors of the backdoor cases
MORE: dict[str, list[tuple[str, Callable[[], Any], str]]] = {
    "euclidean_distance": [("eps-neg", c(DF.euclidean_distance, f(N, D), eps=-1.0), "eps"),
                           ("eps-huge", c(DF.euclidean_distance, f(N, D), eps=1e300), "eps")],
    "cosine_distance": [("eps-inf", c(DF.cosine_distance, f(N, D), eps=INF), "eps"),
                        ("eps-neg", c(DF.cosine_distance, f(N, D), eps=-1.0), "eps"),
                        ("eps-str", c(DF.cosine_distance, f(N, D), eps="x"), "eps")],
    "cosine_similarity_matrix": [("eps-nan", c(DF.cosine_similarity_matrix, f(N, D), eps=NAN),
                                  "eps")],
    "symmetric_kl": [("tau-tiny", c(DF.symmetric_kl, f(N, K), f(N, K), tau=1e-300), "tau"),
                     ("b-device", c(DF.symmetric_kl, f(N, K), meta(N, K)), "b"),
                     ("mask-device", c(DF.symmetric_kl, f(N, K), f(N, 2, K), mask=torch.ones(
                         N, 2, dtype=torch.bool, device="meta")), "mask")],
    "triplet_loss": [("labels-device", c(DF.triplet_loss, f(N, D), y(4).to("meta")), "labels"),
                     ("margin-inf", c(DF.triplet_loss, f(N, D), y(4), margin=INF), "margin"),
                     ("margin-str", c(DF.triplet_loss, f(N, D), y(4), margin="x"), "margin")],
    "batch_hard_mining": [("labels-device", c(DF.batch_hard_mining, f(N, N), y(4).to("meta")),
                           "labels")],
    "center_loss": [("centers-empty", c(DF.center_loss, f(N, D), y(), f(0, D)), "centers"),
                    ("labels-device", c(DF.center_loss, f(N, D), y().to("meta"), f(K, D)),
                     "labels"),
                    ("labels-uint8", c(DF.center_loss, f(N, D), y().to(torch.uint8), f(K, D)),
                     "labels")],
    "calibrated_neg_entropy": [("labels-device", c(
        DF.calibrated_neg_entropy, f(N, K), torch.ones(K), labels=y().to("meta"), focal=True),
        "labels")],
    "reverse_cross_entropy": [("labels-device", c(DF.reverse_cross_entropy, f(N, K),
                                                  y().to("meta")), "labels")],
    "label_smoothing_ce": [("labels-device", c(DF.label_smoothing_ce, f(N, K), y().to("meta")),
                            "labels")],
    "parameter_cosine": [("eps-neg", c(DF.parameter_cosine, f(3), f(3), eps=-1.0), "eps"),
                         ("b-device", c(DF.parameter_cosine, f(3), meta(3)), "params_b")],
    "subspace_diversity": [("m1-inf", c(DF.subspace_diversity, f(N, 4), m1=INF), "m1")],
    "subspace_consistency": [("labels-device", c(DF.subspace_consistency, f(N, 4),
                                                 y(4).to("meta")), "labels")],
    "dann_coeff": [("p-above", c(DF.dann_coeff, 1.5), "p"), ("p-nan", c(DF.dann_coeff, NAN), "p"),
                   ("p-tensor", c(DF.dann_coeff, torch.tensor([0.5, 1.5])), "p")],
    "grad_reverse": [("nan", c(DF.grad_reverse, nan(N, D)), "x"),
                     ("coeff-device", c(DF.grad_reverse, f(N, D), torch.tensor(1.0,
                                                                             device="meta")),
                      "coeff")],
    "backdoor_pairs": [("index-neg", c(DF.backdoor_pairs, *_B, _index(-1), f(N, 2)), "index"),
                       ("index-high", c(DF.backdoor_pairs, *_B, _index(N), f(N, 2)), "index"),
                       ("v-device", c(DF.backdoor_pairs, f(N, D), meta(N, 3), i(N, 2, 2),
                                      f(N, 2)), "v")],
    "backdoor_linear": [
        ("index-neg", c(DF.backdoor_linear, *_B, _index(-1), f(N, 2), f(K, D + 3)), "index"),
        ("s-half", c(DF.backdoor_linear, h(N, D), f(N, 3), i(N, 2, 2), f(N, 2), f(K, D + 3)),
         "s"),
        ("head-device", c(DF.backdoor_linear, *_B, i(N, 2, 2), f(N, 2), meta(K, D + 3)),
         "head_weight")],
    "backdoor_indices": [("generator", c(DF.backdoor_indices, f(N, D), k=2, generator=5),
                          "generator"),
                         ("empty", c(DF.backdoor_indices, f(0, D), k=2), "v")],
    "backdoor_adjustment": [("v-device", c(DF.backdoor_adjustment, f(N, D), meta(N, 3), k=2),
                             "v")],
    "domain_style_moments": [
        ("eps-neg", c(DF.domain_style_moments, torch.ones(N, D, 2, 2), y(2), num_domains=2,
                      eps=-1.0), "eps"),
        ("domains-device", c(DF.domain_style_moments, f(N, D, 2, 2), y(2).to("meta"),
                             num_domains=2), "domains"),
        ("spatial-empty", c(DF.domain_style_moments, f(N, D, 0, 2), y(2), num_domains=2), "x")],
    "expand_style_moments": [
        ("present-float", c(DF.expand_style_moments, f(2, D), f(2, D).exp(),
                            torch.tensor([0.5, 3.0]), f(2, D), f(2, D)), "present"),
        ("sigma-device", c(DF.expand_style_moments, f(2, D), meta(2, D),
                           torch.ones(2, dtype=torch.bool), f(2, D), f(2, D)), "sigma")],
    "cross_domain_style": [("eps-inf", c(DF.cross_domain_style, f(N, D, 2, 2), y(2), f(2, D),
                                         f(2, D), num_domains=2, eps=INF), "eps")],
    "batch_norm_train": [
        ("nan-running_var", c(_bn, running_mean=torch.zeros(3),
                              running_var=torch.full((3,), NAN)), "running_var"),
        ("nan-running_var-negative", c(_bn, running_mean=torch.zeros(3),
                                       running_var=-torch.ones(3)), "running_var"),
        ("nan-running_mean", c(_bn, running_mean=torch.full((3,), NAN),
                               running_var=torch.ones(3)), "running_mean"),
        ("weight-device", c(_bn, w=torch.ones(3, device="meta")), "weight"),
        ("eps-inf", c(_bn, eps=INF), "eps")],
    "meta_objective": [
        ("loss_fn", c(DF.meta_objective, None, {"w": f(2).requires_grad_()}, 0, 0,
                      inner_lr=0.1), "loss_fn"),
        ("loss_fn-detached", c(DF.meta_objective, lambda p, b: torch.tensor(1.0),
                               {"w": f(2).requires_grad_()}, 0, 0, inner_lr=0.1), "loss_fn"),
        ("inner_lr-inf", c(DF.meta_objective, lambda p, b: p["w"].sum(),
                           {"w": f(2).requires_grad_()}, 0, 0, inner_lr=INF), "inner_lr")],
    "MetaObjective": [("inner_lr-str", c(Me.MetaObjective, inner_lr="x"), "inner_lr")],
    "MetaDomainSplitter": [
        ("seed", c(Me.MetaDomainSplitter, num_domains=3, seed="x"), "seed"),
        ("generator", c(Me.MetaDomainSplitter, num_domains=3, generator=5), "generator"),
        ("load-none", c(lambda: Me.MetaDomainSplitter(num_domains=3).load_state_dict(None)),
         "state"),
        ("load-generator", c(_splitter, generator=5), "generator"),
        ("load-queue", c(_splitter, queue=[7]), "queue"),
        ("masks-float", c(Me.MetaDomainSplitter.masks, torch.tensor([0.0, 1.0]),
                          (torch.tensor([0]), torch.tensor([1]))), "domains"),
        ("masks-split", c(Me.MetaDomainSplitter.masks, torch.tensor([0, 1]), (0, 1)), "split"),
        ("select-tensor", c(Me.MetaDomainSplitter.select_grouped, torch.arange(6), [0],
                            per_domain=1), "tensors"),
        ("select-negative", c(Me.MetaDomainSplitter.select_grouped, [torch.arange(6)], [-1],
                              per_domain=2), "domains")],
    "CenterLoss": [("generator", c(L.CenterLoss, num_classes=K, dim=D, generator=5), "generator"),
                   ("load-list", c(lambda: _load(L.CenterLoss(num_classes=K, dim=D),
                                                 centers=[[0.0] * D] * K)), "centers"),
                   ("load-nan", c(lambda: _load(L.CenterLoss(num_classes=K, dim=D),
                                                centers=torch.full((K, D), NAN))), "centers")],
    "CalibratedNegEntropy": [
        ("load-negative", c(lambda: _load(L.CalibratedNegEntropy(prior=torch.ones(K)),
                                          prior=-torch.ones(K))), "prior"),
        ("logits-list", c(lambda: L.CalibratedNegEntropy(prior=torch.ones(K))([[0.0] * K])),
         "logits")],
    "TripletLoss": [("margin-inf", c(L.TripletLoss, margin=INF), "margin")],
    "SubspaceConsistency": [("m2-str", c(L.SubspaceConsistency, m2="x"), "m2")],
    "ReverseCrossEntropy": [("labels-device", c(lambda: L.ReverseCrossEntropy()(
        f(N, K), y().to("meta"))), "labels")],
    "GradientReversal": [("load-steps-float", c(lambda: _load(
        Y.GradientReversal(schedule=Y.DannSchedule(max_steps=3)),
        **{"schedule.steps": torch.tensor(1.5)})), "steps")],
    "ConstantSchedule": [
        ("load-value", c(lambda: _load(Y.ConstantSchedule(), value=torch.tensor(-1.0))), "value"),
        ("load-steps", c(lambda: _load(Y.ConstantSchedule(), steps=torch.tensor(-5))), "steps")],
    "DannSchedule": [
        ("load-steps-float", c(lambda: _load(Y.DannSchedule(max_steps=3),
                                             steps=torch.tensor(2.7))), "steps"),
        ("load-steps-int", c(lambda: _load(Y.DannSchedule(max_steps=3), steps=5)), "steps")],
    "BNNeck": [("half", c(lambda: Y.BNNeck(dim=D, num_classes=K)(h(N, D))), "x"),
               ("device", c(lambda: Y.BNNeck(dim=D, num_classes=K)(meta(N, D))), "x")],
    "CrossDomainStyle": [
        ("generator", c(lambda: Y.CrossDomainStyle(num_domains=2)(f(N, D, 2, 2), y(2),
                                                                  generator=5)), "generator"),
        ("eps-inf", c(Y.CrossDomainStyle, num_domains=2, eps=INF), "eps")],
    "StyleFusion": [("half", c(lambda: Y.StyleFusion(channels=D)(h(N, D, 2, 2), h(N, D, 2, 2))),
                     "f_inv"),
                    ("spatial-empty", c(lambda: Y.StyleFusion(channels=D)(
                        f(N, D, 0, 2), f(N, D, 0, 2))), "f_inv")],
    "DisentangledEncoders": [("half", c(lambda: Y.DisentangledEncoders(
        encoder_s=nn.Linear(D, 4), encoder_v=nn.Linear(D, 4), dim=4, num_ids=K,
        num_domains=2)(h(N, D))), "x")],
    "GlobalLocalBlock": [
        ("device", c(lambda: Y.GlobalLocalBlock(make_block=lambda: nn.Linear(D, 2),
                                                num_domains=2)(meta(N, D), y(2))), "x"),
        ("from_block", c(Y.GlobalLocalBlock.from_block, None, num_domains=2), "block")],
    "SubspaceHypernet": [("half", c(lambda: Y.SubspaceHypernet(channels=16)(h(N, 16))), "x"),
                         ("spatial-empty", c(lambda: Y.SubspaceHypernet(channels=16)(
                             f(N, 16, 0, 2))), "x")],
    "CentralDomainDiscriminator": [
        ("half", c(lambda: Y.CentralDomainDiscriminator(in_dim=D)(h(N, D))), "x"),
        ("one-in-training", c(lambda: Y.CentralDomainDiscriminator(in_dim=D)(f(1, D))), "x")],
    "NuisanceHeads": [("half", c(lambda: Y.NuisanceHeads(in_dim=D, sizes=[2])(h(N, D))), "x"),
                      ("one-in-training", c(lambda: Y.NuisanceHeads(in_dim=D, sizes=[2])(
                          f(1, D))), "x")],
    "BackdoorAdjustment": [("generator", c(lambda: S.BackdoorAdjustment(k=2)(*_B, generator=5)),
                            "generator"),
                           ("v-device", c(lambda: S.BackdoorAdjustment(k=2)(f(N, D),
                                                                             meta(N, 3))), "v")],
    "IDPool": [("dtype", c(_pool, dtype=torch.long), "dtype"),
               ("domain-switch", c(_pool_twice, [0], [1]), "domains"),
               ("domain-conflict", c(_pool_twice, [0, 1], [0]), "domains"),
               ("features-device", c(lambda: _pool()(meta(N, D), labels=y(), domains=y() % 2)),
                "features"),
               ("topk-labels", c(lambda: _pool().topk(f(N, D), y() % 2, labels=None)), "labels"),
               ("load-central", c(lambda: _load(_pool(), central=torch.tensor(7))), "central"),
               ("load-bank-nan", c(lambda: _load(_pool(), bank=torch.full((K, D), NAN))),
                "bank"),
               ("load-seen-int", c(lambda: _load(_pool(), seen=torch.full((K,), 3))), "seen")],
    "central_from_distances": [
        ("asymmetric", c(Do.central_from_distances, [[0.0, 1.0, 2.0], [5.0, 0.0, 1.0],
                                                     [2.0, 1.0, 0.0]]), "distances"),
        ("str", c(Do.central_from_distances, "x"), "distances"),
        ("ragged", c(Do.central_from_distances, [[0.0, 1.0], [1.0]]), "distances")],
    "wasserstein_matrix": [
        ("none-entry", c(Do.wasserstein_matrix, [f(4, D), None]), "features_by_domain[1]"),
        ("device", c(Do.wasserstein_matrix, [f(4, D), meta(4, D)]), "features_by_domain[1]"),
        ("seed", c(Do.wasserstein_matrix, [f(4, D), f(4, D)], seed="x"), "seed"),
        ("reg-inf", c(Do.wasserstein_matrix, [f(4, D), f(4, D)], method="sinkhorn", reg=INF),
         "reg")],
    "paired_wasserstein": [("dims", c(Do.paired_wasserstein, [f(3, D)], [f(3, D + 1)]),
                            "after[0]"),
                           ("none", c(Do.paired_wasserstein, None, None), "before")],
    "domain_cosine_similarity": [
        ("device", c(Do.domain_cosine_similarity, [f(4, 3), meta(4, 3)]),
         "features_by_domain[1]"),
        ("none", c(Do.domain_cosine_similarity, None), "features_by_domain")],
    "domain_table": [("digits", c(Do.domain_table, ["a"], [[0.0]], title="t", digits=-1),
                      "digits"),
                     ("names", c(Do.domain_table, None, [[0.0]], title="t"), "names")],
    "encode_domains": [("encode", c(lambda: Do.encode_domains(None, bench().train, 2)), "encode"),
                       ("ds", c(Do.encode_domains, lambda x: x, [1], 2), "ds"),
                       ("seed", c(lambda: Do.encode_domains(lambda x: x.flatten(1),
                                                            bench().train, 2, seed="x")), "seed")],
}
for _name, _cases in MORE.items():
    CASES[_name] = CASES.get(_name, []) + _cases


def _methods_cases() -> dict[str, list[tuple[str, Callable[[], Any], str]]]:
    from dgblocks import methods as Mt

    tiny = types.SimpleNamespace(num_ids=4)
    return {
        "Method": [("cfg", c(Mt.Method, {"steps": 1}, tiny), "cfg"),
                   ("bench", c(Mt.Method, Mt.TrainConfig(), object()), "bench"),
                   ("seed", c(Mt.Method, Mt.TrainConfig(), tiny, seed=1.5), "seed")],
        "Stage": [("name", c(Mt.Stage, "", 1), "name"), ("steps", c(Mt.Stage, "s", -1), "steps"),
                  ("sampler", c(Mt.Stage, "s", 1, sampler="x"), "sampler"),
                  ("batch", c(Mt.Stage, "s", 1, batch_size=0), "batch_size"),
                  ("update", c(Mt.Stage, "s", 1, update=1), "update")],
        "ReIDNet": [("backbone", c(Mt.ReIDNet, nn.Linear(2, 2), 3), "backbone")],
        "StageBlock": [("block", c(Mt.StageBlock, 3), "block")],
        "AGG": [("cfg", c(Mt.AGG, None, bench()), "cfg"),
                ("bench", c(Mt.AGG, Mt.AGGConfig(), None), "bench")],
        "AGGConfig": [("lr", c(Mt.AGGConfig, lr=-1.0), "lr"),
                      ("backbone", c(Mt.AGGConfig, backbone="x"), "backbone")],
        "OptimConfig": [("schedule", c(Mt.OptimConfig, schedule="x"), "schedule"),
                        ("optimizer", c(Mt.OptimConfig, optimizer="x"), "optimizer")],
        "TrainConfig": [("steps", c(Mt.TrainConfig, steps=-2), "steps"),
                        ("batch", c(Mt.TrainConfig, batch_size=0), "batch-size")],
        "NuisanceAdversary": [
            ("loss", c(Mt.NuisanceAdversary, in_dim=4, sizes={"c": 2}, loss="x"), "loss"),
            ("sizes", c(Mt.NuisanceAdversary, in_dim=4, sizes={}, loss="ne"), "sizes"),
            ("labels", c(Mt.NuisanceAdversary, in_dim=4, sizes={"c": 2}), "labels"),
            ("lr", c(Mt.NuisanceAdversary, in_dim=4, sizes={"c": 2}, loss="ne", lr=-1.0), "lr")],
        "owned_parameters": [("module", c(Mt.owned_parameters, "x"), "module")],
        "LocalContext": [("method", c(Mt.LocalContext, None), "method")],
        "validation_error": [("val", c(E.validation_error, nn.Flatten(), "val"), "val")],
        "LogUniform": [("low", c(Mt.LogUniform, 0.0, 1.0), "low"),
                       ("order", c(Mt.LogUniform, 1.0, 0.5), "low")],
        "Uniform": [("order", c(Mt.Uniform, 1.0, 0.5), "low"),
                    ("nan", c(Mt.Uniform, NAN, 0.5), "low")],
        "Choice": [("one", c(Mt.Choice, (1,)), "options"), ("str", c(Mt.Choice, "ab"), "options")],
        "around": [("value", c(Mt.around, -1.0), "value"), ("factor", c(Mt.around, 1.0, 0.5),
                                                              "factor")],
        "check_space": [("field", c(Mt.check_space, {"nope": Mt.Uniform(0, 1)}, Mt.TrainConfig),
                         "space"),
                        ("dist", c(Mt.check_space, {"lr": 3}, Mt.TrainConfig), "space"),
                        ("default", c(Mt.check_space, {"lr": Mt.LogUniform(1.0, 2.0)},
                                      Mt.TrainConfig), "space")],
        "sample_space": [("space", c(Mt.sample_space, None, lambda n, d: 0), "space")],
        "as_flags": [("values", c(Mt.as_flags, ["--lr"]), "values")],
    }


CASES.update(_methods_cases())
for _name, _cases in DATA_CASES.items():  # dgblocks.data and more of dgblocks.protocols
    CASES.setdefault(_name, []).extend(_cases)


def _fused_bn(x: torch.Tensor) -> Any:
    bn = nn.BatchNorm1d(3)
    with Me.FusedNormDoubleBackward():
        return bn(x)


def _public() -> dict[str, Any]:
    names: dict[str, Any] = {}
    for pkg_name in PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for name in pkg.__all__:
            names.setdefault(name, getattr(pkg, name))
    return names


def test_every_public_name_has_cases():
    public = _public()
    missing = [n for n in public if n not in CASES and n not in NOT_CALLABLE]
    assert not missing, f"add bad-input cases to tests/test_bad_input.py for {missing}"
    assert set(CASES) | set(NOT_CALLABLE) <= set(public), "stale entries"
    for name in NOT_CALLABLE:  # only containers and constants are exempt
        obj = public[name]
        assert not inspect.isfunction(obj) and not (inspect.isclass(obj)
                                                    and issubclass(obj, nn.Module)), name


ALL = [pytest.param(fn, arg, id=f"{name}-{case}") for name, cases in CASES.items()
       for case, fn, arg in cases]


@pytest.mark.parametrize(("call", "arg"), ALL)
def test_bad_input_raises_value_error_naming_the_argument(call, arg, request):
    case = request.node.callspec.id.rsplit("-", 1)[-1]
    nan_case = request.node.callspec.id.split("-", 1)[1].startswith("nan")
    with dgblocks.checks(nan=True) if nan_case else _nothing():
        with pytest.raises(ValueError) as info:
            call()
    assert isinstance(info.value, dgblocks.DGBlocksError) or type(info.value) is ValueError
    assert str(info.value).startswith(f"{arg}:") or f"{arg}" in str(info.value), (case,
                                                                                 str(info.value))


def _nothing() -> Any:
    import contextlib
    return contextlib.nullcontext()


def test_table_size():
    n_cases = sum(len(v) for v in CASES.values())
    assert len(CASES) >= 83 and n_cases >= 300, (len(CASES), n_cases)
