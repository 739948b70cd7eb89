r"""Disentangled encoders with shared heads (DIR-ReID 3.3).

Two encoders map an image to an identity factor $s = f_S(x)$ and a domain factor
$v = f_V(x)$ in latent spaces of the same dimension. Two heads are *shared across the latent
spaces*: $C_S$ (identity classifier) and $C_V$ (domain classifier) are applied to both $s$ and
$v$, which gives every term of DIR-ReID eq 2-7 and 12-13:

| term | logits |
| --- | --- |
| $L_{sid}$ (eq 2) | $C_S(s)$ |
| $L_{domindis}$ (eq 3-4), $L_{sdom}$ (eq 13) | $C_V(s)$ |
| $L_{vdom}$ (eq 7) | $C_V(v)$ |
| $L_{idindis}$ (eq 6), $L_{vid}$ (eq 12) | $C_S(v)$ |

Phase I trains the encoders with the heads frozen (optimise :meth:`encoder_parameters` only);
phase II trains the heads on detached factors (``forward(x, detach=True)``, optimise
:meth:`head_parameters`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, NamedTuple

from torch import Tensor, nn

from dgblocks._checks import ShapeError, check_finite, check_float, check_int, check_shape
from dgblocks._module_checks import check_module_input

__all__ = ["DisentangledEncoders", "DisentangledOutput"]


class DisentangledOutput(NamedTuple):
    """Factors and the logits of both shared heads on both factors."""

    s: Tensor
    v: Tensor
    id_s: Tensor
    dom_s: Tensor
    id_v: Tensor
    dom_v: Tensor


class DisentangledEncoders(nn.Module):
    """Identity and domain encoders with heads shared across latent spaces (DIR-ReID 3.3).

    Args:
        encoder_s: $f_S$, maps a batch to identity factors (B, dim); IN-augmented in the paper.
        encoder_v: $f_V$, maps a batch to domain factors (B, dim).
        dim: dimension of both latent spaces.
        num_ids: identities $M$ (outputs of $C_S$).
        num_domains: domains $G$ (outputs of $C_V$). $G = 1$ is accepted (one source whose
            images carry no other domain label): $C_V$ then has one output, so every domain
            term (eq 3-4, 7, 13) is identically 0. DIR-ReID's single-source experiment
            (Table 4) uses the cameras as domains instead.

    Shape:
        x: whatever the encoders take, (B, ...); output: :class:`DisentangledOutput` with s, v
        (B, dim), id_s, id_v (B, num_ids), dom_s, dom_v (B, num_domains).

    Invariants:
        - with num_domains=1, dom_s and dom_v are (B, 1): softmax 1, cross-entropy and entropy 0

    Example:
        >>> enc = DisentangledEncoders(encoder_s=nn.Linear(6, 4), encoder_v=nn.Linear(6, 4),
        ...                            dim=4, num_ids=10, num_domains=3)
        >>> out = enc(torch.randn(2, 6))
        >>> out.s.shape, out.id_v.shape, out.dom_s.shape
        (torch.Size([2, 4]), torch.Size([2, 10]), torch.Size([2, 3]))
    """

    functional_name: ClassVar[str | None] = None

    def __init__(self, *, encoder_s: nn.Module, encoder_v: nn.Module, dim: int, num_ids: int,
                 num_domains: int) -> None:
        super().__init__()
        for name, enc in (("encoder_s", encoder_s), ("encoder_v", encoder_v)):
            if not isinstance(enc, nn.Module):
                raise ShapeError(f"{name}: expected an nn.Module, got {type(enc).__name__}")
        if encoder_s is encoder_v:
            raise ShapeError("encoder_v: expected a module distinct from encoder_s, got the same")
        self.dim = check_int(dim, name="dim", minimum=1)
        self.num_ids = check_int(num_ids, name="num_ids", minimum=2)
        self.num_domains = check_int(num_domains, name="num_domains", minimum=1)
        self.encoder_s, self.encoder_v = encoder_s, encoder_v
        self.id_head = nn.Linear(dim, num_ids)  # C_S
        self.domain_head = nn.Linear(dim, num_domains)  # C_V

    def forward(self, x: Tensor, *, detach: bool = False) -> DisentangledOutput:
        """Both factors of ``x`` and both shared heads applied to both factors.

        Args:
            x: whatever the two encoders take, (B, ...), on the block's device and, if
                floating, in its dtype (or under ``torch.autocast``); checked for NaN/Inf under
                ``dgblocks.checks(nan=True)``. The encoders' outputs must be (B, dim) in the
                heads' dtype.
            detach: apply the heads to detached factors (phase II: train the heads only).

        Returns:
            :class:`DisentangledOutput` ``(s, v, id_s, dom_s, id_v, dom_v)``: the factors
            (B, dim) and the logits $C_S(s), C_V(s), C_S(v), C_V(v)$; the same in training and
            eval mode (the encoders' own layers follow the mode).
        """
        if isinstance(x, Tensor):
            check_finite(x, name="x")
            check_module_input(x, self, name="x")  # a floating x in the encoders' dtype
        s, v = self.encoder_s(x), self.encoder_v(x)
        b = check_shape(s, "B D", name="encoder_s output", D=self.dim)["B"]
        check_shape(v, "B D", name="encoder_v output", B=b, D=self.dim)
        for name, t in (("encoder_s output", s), ("encoder_v output", v)):
            check_float(t, name=name)
            check_module_input(t, self.id_head, name=name)
        hs, hv = (s.detach(), v.detach()) if detach else (s, v)
        return DisentangledOutput(s, v, self.id_head(hs), self.domain_head(hs),
                                  self.id_head(hv), self.domain_head(hv))

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of $f_S$ and $f_V$ (phase I)."""
        yield from self.encoder_s.parameters()
        yield from self.encoder_v.parameters()

    def head_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of $C_S$ and $C_V$ (phase II)."""
        yield from self.id_head.parameters()
        yield from self.domain_head.parameters()

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_ids={self.num_ids}, num_domains={self.num_domains}"
