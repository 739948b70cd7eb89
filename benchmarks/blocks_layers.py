"""Cases of benchmarks/blocks.py for ``dgblocks.layers``: ours beside a naive reference.

Feature maps are ResNet-50 sized for a 256 x 128 person crop: (64, C, 64, 32) after the first
stage (C = 64 or 256), (B, 2048, 16, 8) at the end. Identity classifiers have 18,530 classes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.blocks_case import Case, Spec, gen
from benchmarks.blocks_losses import BD, IDS
from dgblocks import layers as Y
from dgblocks.functional import cross_domain_style

MAPS = [dict(B=64, C=64, H=64, W=32), dict(B=64, C=256, H=64, W=32)]
G = 4  # source domains


def _randn(*shape: int, seed: int = 0, grad: bool = True) -> torch.Tensor:
    return torch.randn(*shape, generator=gen(seed)).requires_grad_(grad)


def _domains(b: int) -> torch.Tensor:
    return (torch.arange(b) % G)[torch.randperm(b, generator=gen(8))]


def _params(*mods: nn.Module) -> list[torch.Tensor]:
    return [p for m in mods for p in m.parameters() if p.requires_grad]


def gradient_reversal(B: int, D: int) -> Case:
    x, m = _randn(B, D), Y.GradientReversal(coeff=0.5)
    return Case(lambda: m(x), lambda: x * -0.5 + (x * 1.5).detach(), [x])


def dann_schedule(steps: int = 500, max_steps: int = 1000) -> Case:
    m = Y.DannSchedule(max_steps=max_steps)
    m.step(steps)

    def ref() -> float:  # TLlib's warm start: a Python float from the host-side step counter
        return 2.0 / (1.0 + math.exp(-10.0 * steps / max_steps)) - 1.0

    return Case(m, ref, check=lambda: abs(float(m()) - ref()) / abs(ref()))


def constant_schedule() -> Case:
    m = Y.ConstantSchedule(value=0.3)
    return Case(m)


def bnneck(B: int, D: int, C: int = IDS) -> Case:
    torch.manual_seed(0)
    x, m = _randn(B, D), Y.BNNeck(dim=D, num_classes=C)
    bn, fc = m.bn, m.classifier

    def ref() -> tuple[torch.Tensor, ...]:
        post = F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, True,
                            bn.momentum, bn.eps)
        return x, post, F.linear(post, fc.weight)

    return Case(lambda: m(x), ref, [x, *_params(m)])


def cross_domain(B: int, C: int, H: int, W: int, eps: float = 1e-6) -> Case:
    x, dom = _randn(B, C, H, W), _domains(B)
    e_mu, e_sigma = torch.randn(2, G, C, generator=gen(9))

    def ref() -> torch.Tensor:  # a loop over domains, boolean masks, torch.var
        masks = [dom == k for k in range(G)]
        mu = torch.stack([x[mk].mean(dim=(0, 2, 3)) for mk in masks])
        sigma = torch.stack([(x[mk].var(dim=(0, 2, 3), unbiased=False) + eps).sqrt()
                             for mk in masks])
        mu_hat = (mu.sum(0) - mu) / (G - 1) + e_mu * mu.var(0, unbiased=False)
        sigma_hat = ((sigma.sum(0) - sigma) / (G - 1)
                     + e_sigma * sigma.var(0, unbiased=False)).clamp_min(0)
        out = torch.empty_like(x)
        for k, mk in enumerate(masks):
            a, b, c, d = (t[k][None, :, None, None] for t in (sigma_hat, mu, sigma, mu_hat))
            out[mk] = a * (x[mk] - b) / c + d
        return out

    return Case(lambda: cross_domain_style(x, dom, e_mu, e_sigma, num_domains=G, eps=eps),
                ref, [x])


def style_fusion(B: int, C: int, H: int, W: int) -> Case:
    torch.manual_seed(0)
    a, b, m = _randn(B, C, H, W), _randn(B, C, H, W, seed=1), Y.StyleFusion(channels=C)

    def ref() -> torch.Tensor:  # the 1x1 convolution as an einsum over channels
        cat = torch.cat([a, b], dim=1)
        return (torch.einsum("oc,bchw->bohw", m.fc.weight[:, :, 0, 0], cat)
                + m.fc.bias[None, :, None, None])

    return Case(lambda: m(a, b), ref, [a, b, *_params(m)])


def disentangled(B: int, D: int, C: int = IDS) -> Case:
    torch.manual_seed(0)
    x = _randn(B, D)
    m = Y.DisentangledEncoders(encoder_s=nn.Linear(D, D), encoder_v=nn.Linear(D, D), dim=D,
                               num_ids=C, num_domains=G)

    def ref() -> tuple[torch.Tensor, ...]:  # the same modules, called by hand
        s, v = m.encoder_s(x), m.encoder_v(x)
        return s, v, m.id_head(s), m.domain_head(s), m.id_head(v), m.domain_head(v)

    return Case(lambda: m(x), ref, [x, *_params(m)])


def global_local(B: int, D: int) -> Case:
    torch.manual_seed(0)
    x, dom = _randn(B, D), _domains(B)
    m = Y.GlobalLocalBlock(make_block=lambda: nn.Sequential(nn.Linear(D, D), nn.ReLU()),
                           num_domains=G)

    def ref() -> tuple[torch.Tensor, torch.Tensor]:  # routing by boolean masks
        spe = x.new_empty(B, D)
        for k, branch in enumerate(m.local_branches):
            mk = dom == k
            spe[mk] = branch(x[mk])
        return m.global_branch(x), spe

    return Case(lambda: m(x, dom), ref, [x, *_params(m)])


def hypernet(B: int, C: int, H: int, W: int, V: int = 4) -> Case:
    torch.manual_seed(0)
    x, m = _randn(B, C, H, W), Y.SubspaceHypernet(channels=C, groups=V)

    def ref() -> tuple[torch.Tensor, torch.Tensor]:  # weights broadcast over a (B, V, C/V) view
        w = m.net(x.mean((2, 3))).softmax(dim=1) * V  # the default gate
        out = x.view(B, V, C // V, H, W) * w[:, :, None, None, None]
        return out.view(B, C, H, W), w

    return Case(lambda: m(x), ref, [x, *_params(m)])


def discriminator(B: int, D: int) -> Case:
    torch.manual_seed(0)
    x, m = _randn(B, D), Y.CentralDomainDiscriminator(in_dim=D)
    return Case(lambda: m(x), None, [x, *_params(m)])


def nuisance_heads(B: int, D: int) -> Case:
    torch.manual_seed(0)
    x, m = _randn(B, D), Y.NuisanceHeads(in_dim=D, sizes={"camera": 15, "period": 4})
    return Case(lambda: m(x), None, [x, *_params(m)])


SPECS = [
    Spec("layers.GradientReversal", gradient_reversal, BD, dict(B=8, D=8),
         "detach trick x*(-c) + (x*(1+c)).detach()"),
    Spec("layers.DannSchedule", dann_schedule, [{}], {},
         "Python float 2/(1+exp(-10p)) - 1 from a host-side counter (TLlib)"),
    Spec("layers.ConstantSchedule", constant_schedule, [{}], {}, None),
    Spec("layers.BNNeck", bnneck, BD, dict(B=8, D=8, C=10),
         "F.batch_norm + F.linear on the same parameters"),
    Spec("layers.CrossDomainStyle", cross_domain, MAPS, dict(B=8, C=3, H=4, W=2),
         "loop over domains with boolean masks and torch.var (noise given, 4 domains)"),
    Spec("layers.StyleFusion", style_fusion, MAPS, dict(B=2, C=3, H=4, W=2),
         "1x1 convolution as torch.einsum + bias"),
    Spec("layers.DisentangledEncoders", disentangled, BD, dict(B=4, D=8, C=10),
         "the same encoders and heads called by hand (wrapper overhead)"),
    Spec("layers.GlobalLocalBlock", global_local, BD, dict(B=8, D=8),
         "routing by a loop over domains with boolean masks"),
    Spec("layers.SubspaceHypernet", hypernet,
         [dict(B=64, C=256, H=64, W=32), dict(B=64, C=2048, H=16, W=8),
          dict(B=256, C=2048, H=16, W=8)], dict(B=2, C=8, H=4, W=2),
         "weights broadcast over a (B, V, C/V, H, W) view"),
    Spec("layers.CentralDomainDiscriminator", discriminator, BD, dict(B=4, D=8), None),
    Spec("layers.NuisanceHeads", nuisance_heads, BD, dict(B=4, D=8), None),
]
