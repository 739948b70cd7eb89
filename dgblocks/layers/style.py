r"""Cross-domain style expansion (CDVM eq 6-8); the fusion of eq 9 is
:class:`dgblocks.layers.style_fusion.StyleFusion`.

Per-domain channel moments are pooled over the batch samples of each domain and the spatial
positions (eq 6); each domain's expanded style is the mean of the *other* domains' moments
pushed along their cross-domain variance by Gaussian noise (eq 7); the feature is re-styled by
swapping its domain's moments for the expanded ones (eq 8). The pure core takes the noise
explicitly; :class:`CrossDomainStyle` draws it from a ``torch.Generator`` in training and is the
identity in eval mode. Under ``torch.distributed`` the moments are summed over ranks, so N
ranks give what one rank gives on the concatenated batch.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from dgblocks._checks import (
    ShapeError,
    ValueRangeError,
    check_async,
    check_device,
    check_features,
    check_generator,
    check_int,
    check_labels,
    check_nonnegative,
    check_shape,
    values_checked,
    values_on_host,
)
from dgblocks._dist import all_reduce_sum, broadcast

__all__ = [
    "domain_style_moments",
    "expand_style_moments",
    "cross_domain_style",
    "CrossDomainStyle",
]


def domain_style_moments(x: Tensor, domains: Tensor, *, num_domains: int,
                         eps: float = 1e-6) -> tuple[Tensor, Tensor, Tensor]:
    r"""Per-domain channel mean and standard deviation pooled over batch and space (eq 6).

    $$ \mu^k = \frac{1}{B_k H W}\sum_{b \in k,h,w} F(b,h,w), \qquad
       \sigma^k = \sqrt{\frac{1}{B_k H W}\sum_{b \in k,h,w} (F(b,h,w) - \mu^k)^2 + \epsilon} $$

    Summed over ranks under ``torch.distributed``. Differentiable.

    Args:
        x: feature maps $F$.
        domains: domain label of each sample, in ``[0, num_domains)``.
        num_domains: number of known domains $G$.
        eps: added to the variance before the square root.

    Shape:
        x: (B, C, H, W); domains: (B,); output: mu (G, C), sigma (G, C), counts (G,) (samples
        per domain; rows of absent domains are 0 / sqrt(eps)).

    Invariants:
        - equal to the mean/std of the concatenated samples of each domain
        - unchanged by permuting the batch

    Example:
        >>> x = torch.arange(8.0).view(2, 1, 2, 2)
        >>> mu, sigma, n = domain_style_moments(x, torch.tensor([0, 1]), num_domains=2, eps=0.0)
        >>> mu.flatten().tolist(), n.tolist()
        ([1.5, 5.5], [1.0, 1.0])
    """
    b, c = check_features(x, "B C H W", name="x")["B"], x.shape[1]
    if 0 in x.shape[2:]:
        raise ShapeError(f"x: expected H, W >= 1 (moments over space), got {tuple(x.shape)}")
    check_int(num_domains, name="num_domains", minimum=1)
    check_nonnegative(eps, name="eps")  # eps = -1 gave NaN for a constant channel
    check_labels(domains, num_domains, name="domains", n=b, length_from="x")
    check_device(domains, x.device, name="domains", origin="x")
    ct = torch.float64 if x.dtype == torch.float64 else torch.float32
    # One pass over the maps: per-sample moments (B, C); a domain pools its samples' moments
    # (every sample has H*W positions): var^k = mean_b [var_b + (mean_b - mu^k)^2], exactly.
    var_b, mean_b = torch.var_mean(x.to(ct), dim=(2, 3), correction=0)
    counts = all_reduce_sum(torch.zeros(num_domains, dtype=ct, device=x.device)
                            .index_add_(0, domains, torch.ones(b, dtype=ct, device=x.device)))
    denom = counts.clamp_min(1).unsqueeze(1)
    s1 = torch.zeros(num_domains, c, dtype=ct, device=x.device).index_add(0, domains, mean_b)
    mu = all_reduce_sum(s1) / denom
    within = var_b + (mean_b - mu[domains]).pow(2)
    var = all_reduce_sum(torch.zeros_like(s1).index_add(0, domains, within)) / denom
    return mu, (var + eps).sqrt(), counts


def expand_style_moments(mu: Tensor, sigma: Tensor, present: Tensor, eps_mu: Tensor,
                         eps_sigma: Tensor) -> tuple[Tensor, Tensor]:
    r"""Expanded cross-domain statistics (eq 7): the others' mean plus noise times the variance.

    $$ \hat\mu^k = \frac{1}{K-1}\sum_{i \ne k}\mu^i + \epsilon_\mu\, \delta(\mu), \qquad
       \hat\sigma^k = \frac{1}{K-1}\sum_{i \ne k}\sigma^i + \epsilon_\sigma\, \delta(\sigma) $$

    The sums run over the $K$ domains present in the batch; $\delta$ is the per-channel
    (population) variance across those domains. $\hat\sigma$ is clamped at 0.

    Args:
        mu: per-domain means (:func:`domain_style_moments`).
        sigma: per-domain standard deviations.
        present: which domains are in the batch (at least 2).
        eps_mu: the noise $\epsilon_\mu$, one value per domain and channel.
        eps_sigma: the noise $\epsilon_\sigma$, likewise.

    Shape:
        mu, sigma, eps_mu, eps_sigma: (G, C); present: (G,) bool; output: two (G, C).

    Invariants:
        - with zero noise, mu_hat[k] is the mean of the other present domains' mu
        - the noise moves mu_hat[k] by exactly eps_mu[k] * var(mu) per channel

    Example:
        >>> mu, sigma = torch.tensor([[0.0], [2.0]]), torch.ones(2, 1)
        >>> z = torch.zeros(2, 1)
        >>> expand_style_moments(mu, sigma, torch.tensor([True, True]), z, z)[0].flatten()
        tensor([2., 0.])
    """
    g = check_features(mu, "G C", name="mu")
    for name, t in (("sigma", sigma), ("eps_mu", eps_mu), ("eps_sigma", eps_sigma)):
        check_features(t, "G C", name=name, **g)
    check_device(sigma, mu.device, name="sigma", origin="mu")
    check_shape(present, "G", name="present", G=g["G"])
    if present.dtype != torch.bool:  # float weights would be used as silent weights
        raise ValueRangeError(f"present: expected a bool mask, got {present.dtype}")
    check_device(present, mu.device, name="present", origin="mu")
    w = present.to(mu.dtype).unsqueeze(1)  # (G, 1)
    k = w.sum()
    if values_checked() and not values_on_host(k):  # CUDA: a device assertion, no sync
        check_async(k >= 2, "present: expected at least 2 domains present (variance across"
                    " domains)")
    elif values_checked() and int(k) < 2:  # a value check: one host sync (skipped when off)
        raise ShapeError(f"present: expected at least 2 domains present (variance across"
                         f" domains), got {int(k)}")

    def expand(m: Tensor, noise: Tensor) -> Tensor:
        total = (m * w).sum(0, keepdim=True)
        others = (total - m) / (k - 1)
        mean = total / k
        var = ((m - mean).pow(2) * w).sum(0, keepdim=True) / k
        return others + noise.to(m.device, m.dtype) * var  # noise drawn anywhere: moved

    return expand(mu, eps_mu), expand(sigma, eps_sigma).clamp_min(0)


def cross_domain_style(x: Tensor, domains: Tensor, eps_mu: Tensor, eps_sigma: Tensor, *,
                       num_domains: int, eps: float = 1e-6,
                       detach_stats: bool = False) -> Tensor:
    r"""Re-style each sample with its domain's expanded statistics (CDVM eq 6-8), noise given.

    $$ F_{sty} = \hat\sigma^{k} \frac{F - \mu^{k}}{\sigma^{k}} + \hat\mu^{k}, \qquad
       k = \text{domain of the sample} $$

    Args:
        x: feature maps $F_{spe}$.
        domains: domain label of each sample; the batch must hold at least 2 domains.
        eps_mu: noise $\epsilon_\mu$ per domain and channel (zeros: no random expansion).
        eps_sigma: noise $\epsilon_\sigma$ per domain and channel.
        num_domains: number of known domains $G$.
        eps: variance floor of :func:`domain_style_moments`.
        detach_stats: stop the gradient through the moments (as MixStyle does).

    Shape:
        x: (B, C, H, W); domains: (B,); eps_mu, eps_sigma: (G, C); output: (B, C, H, W).

    Invariants:
        - with zero noise, each domain's output has moments (mu_hat, sigma_hat) exactly
        - unchanged by permuting the batch (outputs permuted alike)

    Example:
        >>> x = torch.randn(4, 3, 2, 2)
        >>> z = torch.zeros(2, 3)
        >>> cross_domain_style(x, torch.tensor([0, 0, 1, 1]), z, z, num_domains=2).shape
        torch.Size([4, 3, 2, 2])
    """
    check_nonnegative(eps, name="eps")
    mu, sigma, counts = domain_style_moments(x, domains, num_domains=num_domains, eps=eps)
    if values_checked() and not values_on_host(counts):  # CUDA: a device assertion, no sync
        check_async((counts > 0).sum() >= 2, "domains: cross-domain style needs at least 2"
                    " domains in the batch (variance across domains)")
    elif values_checked():  # a value check: one host sync (skipped when off or compiling)
        n_present = int((counts > 0).sum())
        if n_present < 2:
            raise ShapeError(f"domains: cross-domain style needs at least 2 domains in the"
                             f" batch (variance across domains), got {n_present}")
    if detach_stats:
        mu, sigma = mu.detach(), sigma.detach()
    mu_hat, sigma_hat = expand_style_moments(mu, sigma, counts > 0, eps_mu, eps_sigma)
    # sigma_hat (x - mu) / sigma + mu_hat as one affine map per domain and channel, x a + b:
    # a single pass over the maps forward and backward (G x C work for the rest)
    scale = sigma_hat / sigma
    shift = mu_hat - mu * scale
    out = torch.addcmul(shift[domains][:, :, None, None], x.to(mu.dtype),
                        scale[domains][:, :, None, None])
    return out.to(x.dtype)


class CrossDomainStyle(nn.Module):
    """Cross-domain style expansion (CDVM eq 6-8); see
    :func:`dgblocks.functional.cross_domain_style`.

    In training mode draws $\\epsilon_\\mu, \\epsilon_\\sigma \\sim N(0, 1)$ per domain and channel
    from ``generator`` (broadcast from rank 0 under ``torch.distributed``); in eval mode returns
    its input unchanged (no domain labels needed).

    Args:
        num_domains: number of source domains.
        eps: variance floor.
        detach_stats: stop the gradient through the domain moments.

    Shape:
        x: (B, C, H, W); domains: (B,); output: (B, C, H, W).

    Example:
        >>> style = CrossDomainStyle(num_domains=3)
        >>> x = torch.randn(6, 4, 5, 5)
        >>> style(x, torch.tensor([0, 0, 1, 1, 2, 2])).shape
        torch.Size([6, 4, 5, 5])
        >>> bool((style.eval()(x) == x).all())
        True
    """

    functional_name: ClassVar[str | None] = "cross_domain_style"

    def __init__(self, *, num_domains: int, eps: float = 1e-6, detach_stats: bool = False) -> None:
        super().__init__()
        self.num_domains = check_int(num_domains, name="num_domains", minimum=2)
        self.eps = float(check_nonnegative(eps, name="eps"))
        self.detach_stats = bool(detach_stats)

    def forward(self, x: Tensor, domains: Tensor | None = None, *,
                generator: torch.Generator | None = None) -> Tensor:
        r"""Re-style ``x`` with noisy cross-domain statistics in training mode.

        Args:
            x: feature maps $F_{spe}$, (B, C, H, W); at least 2 domains in the batch.
            domains: domain label of each sample in ``[0, num_domains)``, (B,); required in
                training mode, unused in eval mode.
            generator: source of the noise $\epsilon_\mu, \epsilon_\sigma \sim N(0, 1)$
                (None: the global RNG).

        Returns:
            Training mode: :func:`cross_domain_style` of ``x`` with freshly drawn noise,
            (B, C, H, W) in the dtype of ``x``. Eval mode: ``x`` itself, unchanged.
        """
        check_generator(generator)
        if not self.training:
            return x
        if domains is None:
            raise ShapeError("domains: required in training mode, got None")
        c = check_features(x, "B C H W", name="x")["C"]
        gdev = generator.device if generator is not None else x.device
        noise = torch.randn(2, self.num_domains, c, generator=generator, device=gdev)
        noise = broadcast(noise.to(x.device))
        return cross_domain_style(x, domains, noise[0], noise[1], num_domains=self.num_domains,
                                  eps=self.eps, detach_stats=self.detach_stats)

    def extra_repr(self) -> str:
        return f"num_domains={self.num_domains}, eps={self.eps}, detach_stats={self.detach_stats}"
