"""Every block's hot path compiles under ``torch.compile(fullgraph=True)`` (no graph break).

``fullgraph=True`` raises on a graph break. The backend is ``aot_eager``: it traces the forward
*and* the backward graph (AOTAutograd) without needing a C++ compiler, in well under a second
per block. The compiled forward and gradients must equal eager mode's.

Value checks that read tensor values (label ranges, NaN checks, "two domains present") are
skipped while dynamo traces (``dgblocks._checks.values_checked``); run one step eagerly to have
the inputs checked. What cannot be one graph, by design, is listed in :data:`NOT_ONE_GRAPH`
and tested for what it can do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import dgblocks.functional as DF
from dgblocks import distances as D
from dgblocks import layers as Y
from dgblocks import losses as L
from dgblocks._checks import values_checked
from dgblocks.memory import IDPool
from dgblocks.sampling import BackdoorAdjustment

BACKEND = "aot_eager"

NOT_ONE_GRAPH = {
    "GlobalLocalBlock (training, with domains)":
        "routes each domain's samples through its own branch: torch.split needs the per-domain"
        " counts on the host (one .tolist()); the inference path (domains=None) is one graph",
    "generator= arguments (CrossDomainStyle, BackdoorAdjustment)":
        "dynamo cannot trace a torch.Generator object; compile with generator=None (global"
        " RNG), or draw the noise eagerly and compile the pure core (cross_domain_style,"
        " backdoor_pairs), which is one graph",
    "dgblocks.domains.central_domain":
        "calls POT (NumPy) on host arrays, once per epoch: not a hot path, not compiled",
}

B, DIM, C = 8, 16, 10


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _x(*shape: int, seed: int = 0, grad: bool = True) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).requires_grad_(grad)


def _tensors(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    return [t for item in out for t in _tensors(item)] if isinstance(out, (tuple, list)) else []


def _grads(fn: Callable, args: tuple, leaves: list[torch.Tensor]) -> tuple[list, list]:
    outs = _tensors(fn(*args))
    diff = [o for o in outs if o.requires_grad]
    grads = []
    if diff:
        loss = sum((o.float() * torch.linspace(-1, 1, o.numel()).view_as(o)).sum() for o in diff)
        grads = list(torch.autograd.grad(loss, leaves, allow_unused=True))
    return [o.detach() for o in outs], grads


def _leaves(fn: Any, args: tuple) -> list[torch.Tensor]:
    mods = [fn, *args, *(m for a in args if isinstance(a, list) for m in a)]
    params = [p for m in mods if isinstance(m, nn.Module) for p in m.parameters()]
    return [t for t in (*args, *params) if isinstance(t, torch.Tensor) and t.requires_grad]


def _domains() -> torch.Tensor:
    return torch.arange(B) % 4


CASES: dict[str, Callable[[], tuple[Any, tuple]]] = {
    "NegEntropy": lambda: (L.NegEntropy(), (_x(B, C),)),
    "CalibratedNegEntropy": lambda: (L.CalibratedNegEntropy(prior=torch.rand(C).softmax(0)),
                                     (_x(B, C),)),
    "CalibratedNegEntropy(focal)": lambda: (
        L.CalibratedNegEntropy(prior=torch.rand(C).softmax(0), focal=True),
        (_x(B, C), torch.arange(B) % C)),
    "ReverseCrossEntropy": lambda: (L.ReverseCrossEntropy(coeff=0.5), (_x(B, C), _domains())),
    "LabelSmoothingCE": lambda: (L.LabelSmoothingCE(), (_x(B, C), _domains())),
    "SymmetricKL": lambda: (L.SymmetricKL(tau=0.1), (_x(B, DIM), _x(B, 3, DIM, seed=1))),
    "TripletLoss": lambda: (L.TripletLoss(), (_x(B, DIM), torch.arange(B) // 2)),
    "CenterLoss": lambda: (L.CenterLoss(num_classes=C, dim=DIM), (_x(B, DIM), _domains())),
    "ParameterCosine": lambda: (L.ParameterCosine(),
                                ([nn.Linear(4, 4)], [nn.Linear(4, 4), nn.Linear(4, 4)])),
    "SubspaceDiversity": lambda: (L.SubspaceDiversity(), (_x(B, 4),)),
    "SubspaceConsistency": lambda: (L.SubspaceConsistency(), (_x(B, 4),)),
    "SubspaceConsistency(labels)": lambda: (L.SubspaceConsistency(),
                                            (_x(B, 4), torch.arange(B) // 2)),
    "ConsistencyLoss": lambda: (L.ConsistencyLoss(), (_x(B, DIM), _x(B, DIM, seed=1))),
    "GradientReversal": lambda: (Y.GradientReversal(coeff=0.5), (_x(B, DIM),)),
    "GradientReversal(DannSchedule)": lambda: (
        Y.GradientReversal(schedule=Y.DannSchedule(max_steps=10)), (_x(B, DIM),)),
    "DannSchedule": lambda: (Y.DannSchedule(max_steps=10), ()),
    "ConstantSchedule": lambda: (Y.ConstantSchedule(value=0.3), ()),
    "BNNeck": lambda: (Y.BNNeck(dim=DIM, num_classes=C), (_x(B, DIM),)),
    "cross_domain_style": lambda: (
        lambda x, d: DF.cross_domain_style(x, d, torch.ones(4, 3), -torch.ones(4, 3),
                                           num_domains=4),
        (_x(B, 3, 4, 2), _domains())),
    "StyleFusion": lambda: (Y.StyleFusion(channels=3), (_x(2, 3, 4, 2), _x(2, 3, 4, 2, seed=1))),
    "DisentangledEncoders": lambda: (
        Y.DisentangledEncoders(encoder_s=nn.Linear(DIM, 4), encoder_v=nn.Linear(DIM, 4), dim=4,
                               num_ids=C, num_domains=3), (_x(B, DIM),)),
    "GlobalLocalBlock(inference)": lambda: (
        Y.GlobalLocalBlock(make_block=lambda: nn.Linear(DIM, 3), num_domains=2), (_x(B, DIM),)),
    "SubspaceHypernet": lambda: (Y.SubspaceHypernet(channels=8, groups=4), (_x(2, 8, 4, 2),)),
    "CentralDomainDiscriminator": lambda: (Y.CentralDomainDiscriminator(in_dim=DIM),
                                           (_x(B, DIM),)),
    "NuisanceHeads": lambda: (Y.NuisanceHeads(in_dim=DIM, sizes={"cam": 3, "time": 4}),
                              (_x(B, DIM),)),
    "BackdoorAdjustment(hardest)": lambda: (BackdoorAdjustment(k=3, strategy="hardest"),
                                            (_x(B, DIM), _x(B, 4, seed=1))),
    "backdoor_pairs": lambda: (DF.backdoor_pairs, (
        _x(B, DIM), _x(B, 4, seed=1), torch.randint(0, B, (B, 3, 2)), torch.rand(B, 3))),
    "euclidean_distance": lambda: (D.euclidean_distance, (_x(B, DIM),)),
    "squared_euclidean_distance": lambda: (D.squared_euclidean_distance,
                                           (_x(B, DIM), _x(5, DIM, seed=1))),
    "cosine_distance": lambda: (D.cosine_distance, (_x(B, DIM), _x(5, DIM, seed=1))),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hot_path_is_one_graph_and_matches_eager(name):
    fn, args = CASES[name]()
    leaves = _leaves(fn, args)
    compiled = torch.compile(fn, fullgraph=True, backend=BACKEND)
    if isinstance(fn, nn.Module) and any(isinstance(m, nn.BatchNorm1d) for m in fn.modules()):
        state = {k: v.clone() for k, v in fn.state_dict().items()}
        got, g_got = _grads(compiled, args, leaves)
        fn.load_state_dict(state)  # the running statistics moved once: undo before eager
    else:
        got, g_got = _grads(compiled, args, leaves)
    want, g_want = _grads(fn, args, leaves)
    assert len(got) == len(want) > 0
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    assert len(g_got) == len(g_want)
    for a, b in zip(g_got, g_want):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b)


def test_random_blocks_compile_with_the_global_rng():
    s, v = _x(B, DIM), _x(B, 4, seed=1)
    out = torch.compile(BackdoorAdjustment(k=3, strategy="mixup"), fullgraph=True,
                        backend=BACKEND)(s, v)
    assert out.pairs.shape == (B, 3, DIM + 4)
    assert not (out.index == torch.arange(B)[:, None, None]).any()  # never its own v_i
    out.pairs.sum().backward()
    assert s.grad is not None and v.grad is not None
    style = torch.compile(Y.CrossDomainStyle(num_domains=4), fullgraph=True, backend=BACKEND)
    x = _x(B, 3, 4, 2)
    y = style(x, _domains())
    y.square().sum().backward()
    assert y.shape == x.shape and torch.isfinite(x.grad).all()


def test_id_pool_update_and_topk_compile_and_match_eager():
    def fresh() -> IDPool:
        pool = IDPool(num_ids=20, dim=4, num_domains=2, k=2, central=0)
        pool.update(_x(20, 4, grad=False), labels=torch.arange(20), domains=torch.arange(20) % 2)
        return pool

    eager, comp = fresh(), fresh()
    f, d, lab = _x(6, 4, seed=3, grad=False), torch.arange(6) % 2, torch.arange(6) + 10
    torch.compile(lambda a, b, c: comp.update(a, labels=b, domains=c), fullgraph=True,
                  backend=BACKEND)(f, lab, d)
    eager.update(f, labels=lab, domains=d)
    for name, buf in eager.named_buffers():
        torch.testing.assert_close(dict(comp.named_buffers())[name], buf)
    topk = torch.compile(lambda a, b, c: comp.topk(a, b, labels=c), fullgraph=True,
                         backend=BACKEND)
    for central in (0, 1):  # the central domain is read at run time, not baked in
        comp.set_central(central)
        eager.set_central(central)
        assert torch.equal(topk(f, d, lab).index, eager.topk(f, d, labels=lab).index)


def test_global_local_training_breaks_only_at_the_routing():
    block = Y.GlobalLocalBlock(make_block=lambda: nn.Linear(DIM, 3), num_domains=2)
    x, d = _x(B, DIM), torch.arange(B) % 2
    with pytest.raises(Exception, match="bincount|data-dependent|Dynamic shape"):
        torch.compile(block, fullgraph=True, backend=BACKEND)(x, d)
    torch._dynamo.reset()
    explained = torch._dynamo.explain(block)(x, d)
    assert explained.graph_break_count == 1, explained.break_reasons
    out = torch.compile(block, backend=BACKEND)(x, d)  # with the break: still correct
    torch.testing.assert_close(out.spe, block(x, d).spe)


def test_generator_objects_are_the_documented_limit():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(Exception, match="Generator|proxy"):
        torch.compile(BackdoorAdjustment(k=3), fullgraph=True, backend=BACKEND)(
            _x(B, DIM), _x(B, 4, seed=1), generator=g)
    assert "generator= arguments (CrossDomainStyle, BackdoorAdjustment)" in NOT_ONE_GRAPH


def test_value_checks_run_eagerly_and_are_skipped_while_tracing():
    def probe(x: torch.Tensor) -> torch.Tensor:
        return x + 1 if values_checked() else x - 1

    zero = torch.zeros(())
    assert values_checked() and probe(zero) == 1
    assert torch.compile(probe, fullgraph=True, backend="eager")(zero) == -1
    with pytest.raises(ValueError, match="labels: expected values in \\[0, 10\\)"):
        L.LabelSmoothingCE()(_x(B, C), torch.full((B,), 10))
    with pytest.raises(ValueError, match="domains: cross-domain style needs at least 2"):
        DF.cross_domain_style(_x(B, 3, 4, 2), torch.zeros(B, dtype=torch.long),
                              torch.zeros(4, 3), torch.zeros(4, 3), num_domains=4)


@pytest.mark.slow
def test_inductor_compiles_the_triplet_loss():
    """One case through the default backend (needs a C++ compiler; 10 to 20 s)."""
    f, y = _x(32, 64), torch.arange(32) // 4
    m = L.TripletLoss()
    got, g_got = _grads(torch.compile(m, fullgraph=True), (f, y), [f])
    want, g_want = _grads(m, (f, y), [f])
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g_got[0], g_want[0], rtol=1e-4, atol=1e-6)
