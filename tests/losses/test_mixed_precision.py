"""Every loss stays finite, forward and backward, under bf16 autocast on the CPU.

Inputs are bf16 (as activations are inside ``torch.autocast``) and the call runs inside
``torch.autocast("cpu", dtype=torch.bfloat16)``; the cases are those of the device contract
test, restricted to the losses. Logits are scaled up so that a softmax saturates in bf16.
"""

from __future__ import annotations

import pytest
import torch

from tests.test_device_contract import CASES, _tensors

LOSSES = ["neg_entropy", "calibrated_neg_entropy", "reverse_cross_entropy", "label_smoothing_ce",
          "symmetric_kl", "triplet_loss", "center_loss", "parameter_cosine", "subspace_diversity",
          "subspace_consistency", "consistency_loss", "NegEntropy", "CalibratedNegEntropy",
          "ReverseCrossEntropy", "LabelSmoothingCE", "SymmetricKL", "TripletLoss", "CenterLoss",
          "ParameterCosine", "SubspaceDiversity", "SubspaceConsistency", "ConsistencyLoss"]


def test_every_loss_is_covered():
    import dgblocks.losses as L

    assert set(L.__all__) <= set(LOSSES)


@pytest.mark.parametrize("scale", [1.0, 30.0])
@pytest.mark.parametrize("name", LOSSES)
def test_loss_finite_under_bf16_autocast(name, scale, monkeypatch):
    import tests.test_device_contract as C

    made = []

    def bf16(*shape, dev, grad=True):
        t = (scale * torch.randn(*shape, device=dev)).to(torch.bfloat16).requires_grad_(grad)
        made.append(t)
        return t

    monkeypatch.setattr(C, "_t", bf16)
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = _tensors(CASES[name]("cpu"))
    loss = sum(t.float().sum() for t in out if t.is_floating_point())
    assert torch.isfinite(loss), f"{name}: {loss}"
    if loss.requires_grad:
        loss.backward()
        for t in made:
            if t.grad is not None:
                assert torch.isfinite(t.grad.float()).all(), f"{name}: non-finite gradient"
