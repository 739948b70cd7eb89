"""Every public block follows the device of its inputs, and reads no tensor value on the host.

Runs every public function and module of ``dgblocks.functional``, ``losses``, ``layers``,
``memory``, ``sampling`` and ``domains`` (walking ``__all__``) with inputs on the ``meta``
device, forward and backward. Mixing devices raises there exactly as on CUDA ("Expected all
tensors to be on the same device"), so a constant left on the CPU shows up on a CPU-only
machine; constants that a user builds from CPU tensors (a prior counted from labels) are built
on the CPU here on purpose. Meta tensors have no values, so ``.item()``, ``bool(tensor)`` and
``.tolist()`` raise on them: a block that passes reads nothing on the host, which on CUDA means
no host sync (the CUDA test at the end checks that directly with ``set_sync_debug_mode``).

SKIP lists the few public names that fundamentally need values, with the reason.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import dgblocks
import dgblocks.functional as DF
from dgblocks import layers as Y
from dgblocks import losses as L
from dgblocks import memory as M
from dgblocks import sampling as S
from dgblocks._checks import check_finite, check_labels

PACKAGES = ["dgblocks.functional", "dgblocks.losses", "dgblocks.layers", "dgblocks.memory",
            "dgblocks.sampling", "dgblocks.domains"]

# Public names that need tensor values on the host: not device blocks of a training step.
SKIP = {
    "central_domain": "host-side, once per run: exact/entropic OT through POT on NumPy arrays",
    "wasserstein_matrix": "host-side, once per run: POT works on NumPy arrays",
    "central_from_distances": "returns a Python int (argmin of a small matrix on the host)",
    "smoothed_target_entropy": "a Python float of two numbers, no tensor input",
    "paired_wasserstein": "host-side, once per run: wasserstein_matrix per domain (POT)",
    "domain_table": "formats a small matrix as text on the host",
    "encode_domains": "an evaluation pass over a dataset (encode_dataset), features to the CPU",
}
N, K, D, G = 8, 5, 6, 2


def _t(*shape: int, dev: str, grad: bool = True) -> Tensor:
    return torch.randn(*shape, device=dev).requires_grad_(grad)


def _labels(dev: str, high: int = K) -> Tensor:
    return (torch.arange(N) % high).to(dev)


def _bn_loss(params: dict[str, Tensor], x: Tensor) -> Tensor:
    h = torch.nn.functional.batch_norm(x @ params["w"], None, None, params["g"], params["b"],
                                       training=True)
    return h.pow(2).mean()


def _backdoor(dev: str) -> Any:
    s, v = _t(N, D, dev=dev), _t(N, D, dev=dev)
    index, weight = DF.backdoor_indices(v, k=2)
    return DF.backdoor_linear(s, v, index, weight, _t(K, 2 * D, dev=dev), _t(K, dev=dev))


def _style_moments(dev: str) -> Any:
    mu, sigma = _t(G, D, dev=dev), _t(G, D, dev=dev).exp()
    return DF.expand_style_moments(mu, sigma, torch.ones(G, dtype=torch.bool, device=dev),
                                   torch.zeros(G, D, device=dev), torch.zeros(G, D, device=dev))


FUNCTIONS: dict[str, Callable[[str], Any]] = {
    "pairwise_distance": lambda d: DF.pairwise_distance(_t(N, D, dev=d)),
    "euclidean_distance": lambda d: DF.euclidean_distance(_t(N, D, dev=d), _t(3, D, dev=d)),
    "squared_euclidean_distance": lambda d: DF.squared_euclidean_distance(_t(N, D, dev=d)),
    "cosine_distance": lambda d: DF.cosine_distance(_t(N, D, dev=d)),
    "cosine_similarity_matrix": lambda d: DF.cosine_similarity_matrix(_t(N, D, dev=d)),
    "neg_entropy": lambda d: DF.neg_entropy(_t(N, K, dev=d), weights=torch.rand(K)),
    "calibrated_neg_entropy": lambda d: DF.calibrated_neg_entropy(
        _t(N, K, dev=d), DF.class_prior(torch.arange(K), K), labels=_labels(d), focal=True),
    "class_prior": lambda d: DF.class_prior(_labels(d), K),
    "grad_reverse": lambda d: DF.grad_reverse(_t(N, D, dev=d), torch.tensor(0.5, device=d)),
    "dann_coeff": lambda d: DF.dann_coeff(torch.tensor(0.3, device=d)),
    "reverse_cross_entropy": lambda d: DF.reverse_cross_entropy(_t(N, K, dev=d), _labels(d)),
    "label_smoothing_ce": lambda d: DF.label_smoothing_ce(_t(N, K, dev=d), _labels(d)),
    "symmetric_kl": lambda d: DF.symmetric_kl(_t(N, K, dev=d), _t(N, K, dev=d)),
    "triplet_loss": lambda d: DF.triplet_loss(_t(N, D, dev=d), _labels(d, 4)),
    "batch_hard_mining": lambda d: DF.batch_hard_mining(_t(N, N, dev=d), _labels(d, 4)),
    "center_loss": lambda d: DF.center_loss(_t(N, D, dev=d), _labels(d), _t(K, D, dev=d)),
    "parameter_cosine": lambda d: DF.parameter_cosine(nn.Linear(3, 2, device=d),
                                                      nn.Linear(3, 2, device=d)),
    "subspace_diversity": lambda d: DF.subspace_diversity(_t(N, 4, dev=d)),
    "subspace_consistency": lambda d: DF.subspace_consistency(_t(N, 4, dev=d), _labels(d)),
    "consistency_loss": lambda d: DF.consistency_loss(_t(N, D, dev=d), _t(N, D, dev=d)),
    "backdoor_adjustment": lambda d: DF.backdoor_adjustment(_t(N, D, dev=d), _t(N, D, dev=d),
                                                            k=2),
    "backdoor_indices": lambda d: DF.backdoor_indices(_t(N, D, dev=d), k=2),
    "backdoor_linear": _backdoor,
    "backdoor_pairs": lambda d: DF.backdoor_pairs(
        _t(N, D, dev=d), _t(N, D, dev=d), *DF.backdoor_indices(_t(N, D, dev=d), k=2)),
    "domain_style_moments": lambda d: DF.domain_style_moments(
        _t(N, D, 4, 4, dev=d), _labels(d, G), num_domains=G),
    "expand_style_moments": _style_moments,
    "cross_domain_style": lambda d: DF.cross_domain_style(
        _t(N, D, 4, 4, dev=d), _labels(d, G), torch.zeros(G, D), torch.zeros(G, D),
        num_domains=G),
    "domain_cosine_similarity": lambda d: dgblocks.domains.domain_cosine_similarity(
        [_t(N, D, dev=d), _t(3, D, dev=d)]),
    "meta_objective": lambda d: DF.meta_objective(
        _bn_loss, {"w": _t(D, 3, dev=d), "g": _t(3, dev=d), "b": _t(3, dev=d)},
        torch.randn(N, D, device=d), torch.randn(N, D, device=d), inner_lr=0.1).loss,
    "batch_norm_train": lambda d: DF.batch_norm_train(_t(N, 3, 4, dev=d), _t(3, dev=d),
                                                      _t(3, dev=d)),
}

MODULES: dict[str, Callable[[str], Any]] = {
    "NegEntropy": lambda d: L.NegEntropy()(_t(N, K, dev=d)),
    # the prior counted on the CPU (as a recipe does from its training labels), logits elsewhere
    "CalibratedNegEntropy": lambda d: L.CalibratedNegEntropy.from_labels(
        torch.arange(K), num_classes=K)(_t(N, K, dev=d)),
    "ReverseCrossEntropy": lambda d: L.ReverseCrossEntropy(schedule=Y.DannSchedule(
        max_steps=10).to(d))(_t(N, K, dev=d), _labels(d)),
    "LabelSmoothingCE": lambda d: L.LabelSmoothingCE()(_t(N, K, dev=d), _labels(d)),
    "SymmetricKL": lambda d: L.SymmetricKL(tau=2.0)(_t(N, K, dev=d), _t(N, K, dev=d)),
    "TripletLoss": lambda d: L.TripletLoss()(_t(N, D, dev=d), _labels(d, 4)),
    "CenterLoss": lambda d: L.CenterLoss(num_classes=K, dim=D).to(d)(_t(N, D, dev=d), _labels(d)),
    "ParameterCosine": lambda d: L.ParameterCosine()(nn.Linear(3, 2, device=d),
                                                     nn.Linear(3, 2, device=d)),
    "SubspaceDiversity": lambda d: L.SubspaceDiversity()(_t(N, 4, dev=d)),
    "SubspaceConsistency": lambda d: L.SubspaceConsistency()(_t(N, 4, dev=d), _labels(d)),
    "ConsistencyLoss": lambda d: L.ConsistencyLoss()(_t(N, D, dev=d), _t(N, D, dev=d)),
    "GradientReversal": lambda d: Y.GradientReversal(coeff=0.5)(_t(N, D, dev=d)),
    "ConstantSchedule": lambda d: Y.ConstantSchedule(value=0.5).to(d)(),
    "DannSchedule": lambda d: Y.DannSchedule(max_steps=10).to(d)(),
    "BNNeck": lambda d: Y.BNNeck(dim=D, num_classes=K).to(d)(_t(N, D, dev=d)),
    "CrossDomainStyle": lambda d: Y.CrossDomainStyle(num_domains=G).to(d)(
        _t(N, D, 4, 4, dev=d), _labels(d, G)),
    "StyleFusion": lambda d: Y.StyleFusion(channels=D).to(d)(_t(N, D, 4, 4, dev=d),
                                                             _t(N, D, 4, 4, dev=d)),
    "DisentangledEncoders": lambda d: Y.DisentangledEncoders(
        encoder_s=nn.Linear(D, 4), encoder_v=nn.Linear(D, 4), dim=4, num_ids=K,
        num_domains=G).to(d)(_t(N, D, dev=d)),
    # with domains the block routes by domain and needs the counts on the host (one sync);
    # without, every branch sees the batch
    "GlobalLocalBlock": lambda d: Y.GlobalLocalBlock(make_block=lambda: nn.Linear(D, 3),
                                                     num_domains=G).to(d)(_t(N, D, dev=d)),
    "SubspaceHypernet": lambda d: Y.SubspaceHypernet(channels=16, groups=4).to(d)(
        _t(N, 16, 4, 4, dev=d)),
    "CentralDomainDiscriminator": lambda d: Y.CentralDomainDiscriminator(in_dim=D).to(d)(
        _t(N, D, dev=d)),
    "NuisanceHeads": lambda d: Y.NuisanceHeads(in_dim=D, sizes=[2, 3]).to(d)(_t(N, D, dev=d)),
    "IDPool": lambda d: M.IDPool(num_ids=K, dim=D, num_domains=G, k=2, central=0).to(d)(
        _t(N, D, dev=d), labels=_labels(d), domains=_labels(d) % G),  # one domain per id
    "BackdoorAdjustment": lambda d: S.BackdoorAdjustment(k=2)(_t(N, D, dev=d), _t(N, D, dev=d)),
}
CASES = {**FUNCTIONS, **MODULES}


def _public_names() -> list[str]:
    names = []
    for pkg_name in PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for name in pkg.__all__:
            obj = getattr(pkg, name)
            is_block = inspect.isfunction(obj) or (inspect.isclass(obj)
                                                   and issubclass(obj, nn.Module))
            if is_block and name not in names:
                names.append(name)
    return names


def _tensors(out: Any) -> list[Tensor]:
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    return []


def test_every_public_block_has_a_case_or_a_reason():
    names = _public_names()
    missing = [n for n in names if n not in CASES and n not in SKIP]
    assert not missing, f"add a meta-device case (or a SKIP reason) for {missing}"
    assert not set(CASES) & set(SKIP)
    assert set(CASES) | set(SKIP) <= set(names), "stale entries"


@pytest.mark.parametrize("name", sorted(CASES))
def test_block_follows_meta_inputs(name):
    out = _tensors(CASES[name]("meta"))
    assert out, f"{name}: no tensor output"
    for t in out:
        assert t.device.type == "meta", f"{name}: an output on {t.device}"
    loss = sum((t.float().sum() for t in out if t.requires_grad), torch.zeros((), device="meta"))
    if loss.requires_grad:  # backward on meta too: no constant on another device there either
        loss.backward()


@pytest.mark.parametrize("name", sorted(CASES))
def test_block_runs_on_cpu(name):  # the same cases are valid calls (guards the table itself)
    with dgblocks.checks(nan=True):
        assert _tensors(CASES[name]("cpu"))


def test_value_checks_take_the_device_assert_on_non_cpu_tensors(monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "_assert_async", lambda cond, msg: calls.append(msg))
    labels = torch.tensor([0, 7], device="meta")  # out of range, but meta has no values
    check_labels(labels, 3, name="labels")
    with dgblocks.checks(nan=True):
        check_finite(torch.zeros(2, device="meta"), name="logits")
    assert calls == ["labels: expected values in [0, 3)",
                     "logits: expected finite values, got NaN or Inf"]
    calls.clear()
    check_labels(torch.tensor([0, 2]), 3, name="labels")  # the CPU reads values: no assert
    assert calls == []


def test_cpu_messages_unchanged():
    with pytest.raises(dgblocks.ValueRangeError, match=r"labels: expected values in \[0, 3\), got 7"):
        check_labels(torch.tensor([0, 7]), 3, name="labels")


def test_meta_norm_double_backward_on_meta():
    # the double backward of batch_norm_train calls aten.native_batch_norm_backward with a
    # defined weight (None fails on CUDA: "tensor does not have a device")
    from dgblocks.meta.norm import _BatchNormBackward

    x, w = _t(N, 3, 4, dev="meta"), _t(3, dev="meta")
    g = _t(N, 3, 4, dev="meta")
    mean, invstd = torch.zeros(3, device="meta"), torch.ones(3, device="meta")
    gx, gw, gb = _BatchNormBackward.apply(g, x, w, mean, invstd, 1e-5)
    (gx.sum() + gw.sum() + gb.sum()).backward()
    assert x.grad is not None and g.grad is not None and w.grad is not None


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", sorted(CASES))
def test_block_on_cuda_without_host_sync(name):
    CASES[name]("cuda")  # warm-up: lazy initialisation may sync once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = _tensors(CASES[name]("cuda"))
        loss = sum((t.float().sum() for t in out if t.requires_grad), torch.zeros((), device="cuda"))
        if loss.requires_grad:
            loss.backward()
    finally:
        torch.cuda.set_sync_debug_mode(0)
