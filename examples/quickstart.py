"""Compose dgblocks losses on random data and print them (no download, seconds on a CPU).

Run: ``python examples/quickstart.py``
"""

import torch

import dgblocks.functional as DF
from dgblocks.losses import CalibratedNegEntropy, NegEntropy


def main() -> None:
    g = torch.Generator().manual_seed(0)
    batch, dim, num_cams = 32, 128, 4
    features = torch.randn(batch, dim, generator=g, requires_grad=True)
    cam_labels = torch.randint(0, num_cams, (batch,), generator=g)
    cam_head = torch.nn.Linear(dim, num_cams)

    cam_logits = cam_head(features)
    losses = {
        "neg_entropy(cam)": NegEntropy()(cam_logits),
        "CaNE(cam)": CalibratedNegEntropy.from_labels(cam_labels, num_classes=num_cams)(cam_logits),
        "mean pairwise distance": DF.euclidean_distance(features).mean(),
    }
    total = sum(losses.values())
    total.backward()
    for name, value in losses.items():
        print(f"{name:>24s}: {value.item():+.4f}")
    print(f"{'total':>24s}: {total.item():+.4f}  (grad norm {features.grad.norm():.4f})")


if __name__ == "__main__":
    main()
