"""Cases of benchmarks/blocks.py for ``dgblocks.losses``: ours beside a naive reference.

Sizes: batches of 64 and 256, features of 256 and 2048 dimensions, 18,530 identities (the
identity classifier of a 5-source ReID protocol), 15 nuisance classes (cameras), P x K batches
with K = 4 images per identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.blocks_case import Case, Spec, gen
from dgblocks import losses as L

IDS = 18_530
CAMS = 15
BD = [dict(B=64, D=256), dict(B=64, D=2048), dict(B=256, D=256), dict(B=256, D=2048)]
B_IDS = [dict(B=64, C=IDS), dict(B=256, C=IDS)]
B_CAMS = [dict(B=64, C=CAMS), dict(B=256, C=CAMS)]


def _randn(*shape: int, seed: int = 0, grad: bool = True) -> torch.Tensor:
    return torch.randn(*shape, generator=gen(seed)).requires_grad_(grad)


def _labels(b: int, c: int, seed: int = 2) -> torch.Tensor:
    return torch.randint(0, c, (b,), generator=gen(seed))


def neg_entropy(B: int, C: int) -> Case:
    z, m = _randn(B, C), L.NegEntropy()
    return Case(lambda: m(z),
                lambda: -torch.distributions.Categorical(logits=z).entropy().mean(), [z])


def calibrated_neg_entropy(B: int, C: int) -> Case:
    z, prior = _randn(B, C), torch.rand(C, generator=gen(3)).softmax(0)
    m = L.CalibratedNegEntropy(prior=prior)

    def ref() -> torch.Tensor:
        p = z.softmax(-1)
        return (prior * p * p.log()).sum(-1).mean()  # the paper's formula, log of the softmax

    return Case(lambda: m(z), ref, [z])


def reverse_cross_entropy(B: int, C: int) -> Case:
    z, y, m = _randn(B, C), _labels(B, C), L.ReverseCrossEntropy(coeff=0.5)

    def ref() -> torch.Tensor:  # the detach trick: value z, gradient -0.5 dL/dz
        return F.cross_entropy(z * -0.5 + (z * 1.5).detach(), y)

    return Case(lambda: m(z, y), ref, [z])


def label_smoothing_ce(B: int, C: int) -> Case:
    z, y, m = _randn(B, C), _labels(B, C), L.LabelSmoothingCE(eps=0.1)
    return Case(lambda: m(z, y), lambda: F.cross_entropy(z, y, label_smoothing=0.1), [z])


def symmetric_kl(B: int, D: int, k: int = 8) -> Case:
    a, b = _randn(B, D), _randn(B, k, D, seed=1, grad=False)  # pool entries: no gradient
    m = L.SymmetricKL(tau=2e-3)

    def ref() -> torch.Tensor:
        lp = (a / 2e-3).log_softmax(-1).unsqueeze(1).expand(B, k, D)
        lq = (b / 2e-3).log_softmax(-1)
        pq = F.kl_div(lq, lp, log_target=True, reduction="none").sum(-1)  # KL(p || q)
        qp = F.kl_div(lp, lq, log_target=True, reduction="none").sum(-1)
        return (pq + qp).mean()

    return Case(lambda: m(a, b), ref, [a])


def triplet(B: int, D: int, margin: float = 0.3) -> Case:
    f, y, m = _randn(B, D), torch.arange(B) // 4, L.TripletLoss(margin=margin)

    def ref() -> torch.Tensor:  # mining by a Python loop over the rows of torch.cdist
        dist = torch.cdist(f, f)
        losses = []
        for i in range(B):
            same = y == y[i]
            pos = same.clone()
            pos[i] = False
            losses.append(F.relu(dist[i][pos].max() - dist[i][~same].min() + margin))
        return torch.stack(losses).mean()

    return Case(lambda: m(f, y), ref, [f])


def center(B: int, D: int, C: int = IDS) -> Case:
    f, y = _randn(B, D), _labels(B, C)
    m = L.CenterLoss(num_classes=C, dim=D, generator=gen(4))
    classes = torch.arange(C)

    def ref() -> torch.Tensor:  # the bag-of-tricks CenterLoss: a full (B, C) distance matrix
        c = m.centers
        dist = (f.pow(2).sum(1, keepdim=True) + c.pow(2).sum(1).unsqueeze(0)).addmm(
            f, c.t(), alpha=-2)
        mask = y.unsqueeze(1) == classes.unsqueeze(0)
        return 0.5 * (dist * mask).sum() / B  # Wen et al.'s 1/2, as ours

    return Case(lambda: m(f, y), ref, [f, m.centers])


def parameter_cosine(D: int, K: int = 4) -> Case:
    torch.manual_seed(5)
    g, locals_ = nn.Linear(D, D), [nn.Linear(D, D) for _ in range(K)]
    m = L.ParameterCosine()

    def ref() -> torch.Tensor:
        va = nn.utils.parameters_to_vector(g.parameters())
        return torch.stack([F.cosine_similarity(va, nn.utils.parameters_to_vector(
            loc.parameters()), dim=0) for loc in locals_]).mean()

    leaves = [p for mod in (g, *locals_) for p in mod.parameters()]
    return Case(lambda: m([g], locals_), ref, leaves)


def subspace_diversity(B: int, V: int = 4, m1: float = 0.1) -> Case:
    w = (0.3 * torch.rand(B, V, generator=gen(6))).requires_grad_()
    m = L.SubspaceDiversity(m1=m1)

    def ref() -> torch.Tensor:  # a loop over the ordered pairs of subspaces
        total = w.new_zeros(B)
        for i in range(V):
            for j in range(V):
                if i != j:
                    total = total + (m1 - (w[:, i] - w[:, j]).abs()).clamp_min(0).pow(2)
        return (total / (V * (V - 1))).mean()

    return Case(lambda: m(w), ref, [w])


def subspace_consistency(B: int, V: int = 4, m2: float = 0.1) -> Case:
    w = (0.3 * torch.rand(B, V, generator=gen(7))).requires_grad_()
    m = L.SubspaceConsistency(m2=m2)

    def ref() -> torch.Tensor:
        off = ~torch.eye(B, dtype=torch.bool)
        hinge = (torch.cdist(w, w) - m2).clamp_min(0).pow(2) * off
        return hinge.sum() / (B * (B - 1))

    return Case(lambda: m(w), ref, [w])


def consistency(B: int, D: int) -> Case:
    a, b, m = _randn(B, D), _randn(B, D, seed=1), L.ConsistencyLoss()
    return Case(lambda: m(a, b), lambda: torch.linalg.vector_norm(a - b, dim=1).mean(), [a, b])


SPECS = [
    Spec("losses.NegEntropy", neg_entropy, B_IDS, dict(B=8, C=10),
         "-Categorical(logits=z).entropy().mean()"),
    Spec("losses.CalibratedNegEntropy", calibrated_neg_entropy, B_CAMS, dict(B=8, C=5),
         "plain formula (prior * p * log p).sum(-1).mean()"),
    Spec("losses.ReverseCrossEntropy", reverse_cross_entropy, B_CAMS, dict(B=8, C=5),
         "F.cross_entropy behind the detach trick z*(-c) + (z*(1+c)).detach()"),
    Spec("losses.LabelSmoothingCE", label_smoothing_ce, B_IDS, dict(B=8, C=10),
         "F.cross_entropy(label_smoothing=0.1)"),
    Spec("losses.SymmetricKL", symmetric_kl, BD, dict(B=4, D=8),
         "F.kl_div both ways (tau = 2e-3, k = 8 neighbours)"),
    Spec("losses.TripletLoss", triplet, BD, dict(B=8, D=8),
         "Python loop over rows of torch.cdist (batch-hard mining)"),
    Spec("losses.CenterLoss", center, BD, dict(B=8, D=8, C=10),
         "bag-of-tricks CenterLoss: full (B, C) distance matrix, masked"),
    Spec("losses.ParameterCosine", parameter_cosine, [dict(D=256), dict(D=2048)], dict(D=8),
         "F.cosine_similarity of parameters_to_vector, per local branch"),
    Spec("losses.SubspaceDiversity", subspace_diversity, [dict(B=64), dict(B=256)],
         dict(B=8), "Python loop over the V(V-1) subspace pairs"),
    Spec("losses.SubspaceConsistency", subspace_consistency, [dict(B=64), dict(B=256)],
         dict(B=8), "torch.cdist + off-diagonal hinge"),
    Spec("losses.ConsistencyLoss", consistency, BD, dict(B=8, D=8),
         "torch.linalg.vector_norm(a - b, dim=1).mean()"),
]
