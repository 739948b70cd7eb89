"""Regenerate the shipped Protocol-1 split files under dgblocks/data/splits/.

Each file holds 10 random test splits drawn once with ``torch.randperm`` from a
``torch.Generator`` seeded with SEED (the same seed for every dataset), from the sizes the
protocol documents (Protocol-1 of DualNorm / DIR-ReID / CDVM, after Song et al. 2019):

- VIPeR: 632 identities (one image in cam_a, one in cam_b) -> 316 test identities; the numbers
  are positions in the list of identities sorted by file-name prefix.
- PRID2011 single-shot: persons 1..200 appear in both cameras -> 100 test persons (their
  cam_a images are the probes; the gallery adds the 549 cam_b-only persons 201..749).
- GRID: 250 paired identities (1..250) -> 125 test identities, a fallback used only when the
  dataset's own features_and_partitions.mat is absent; the gallery adds the 775 distractors.
- i-LIDS: 119 identities -> 60 test identities; query_pick/gallery_pick choose which image of
  each test identity is the probe and which the gallery image: with its n images sorted by
  name, the probe is image ``query_pick % n`` and the gallery image
  ``(probe + 1 + gallery_pick % (n - 1)) % n``.

    python scripts/make_splits.py      # rewrites the four JSON files, byte-identical
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

SEED = 2024
NUM_SPLITS = 10
OUT = Path(__file__).resolve().parents[1] / "dgblocks" / "data" / "splits"


def perm_splits(gen, n, k, offset=0):
    return [sorted((torch.randperm(n, generator=gen)[:k] + offset).tolist())
            for _ in range(NUM_SPLITS)]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    files = {}
    g = torch.Generator().manual_seed(SEED)
    files["viper"] = {"num_ids": 632, "num_test": 316, "ids": "position in sorted id list",
                      "splits": perm_splits(g, 632, 316)}
    g = torch.Generator().manual_seed(SEED)
    files["prid2011"] = {"num_shared": 200, "num_test": 100, "ids": "person number (1-based)",
                         "splits": perm_splits(g, 200, 100, offset=1)}
    g = torch.Generator().manual_seed(SEED)
    files["grid"] = {"num_paired": 250, "num_test": 125, "ids": "identity number (1-based)",
                     "splits": perm_splits(g, 250, 125, offset=1)}
    g = torch.Generator().manual_seed(SEED)
    ilids = []
    for test in perm_splits(g, 119, 60):
        ilids.append({"test": test,
                      "query_pick": torch.randint(0, 10**6, (60,), generator=g).tolist(),
                      "gallery_pick": torch.randint(0, 10**6, (60,), generator=g).tolist()})
    files["ilids"] = {"num_ids": 119, "num_test": 60, "ids": "position in sorted id list",
                      "splits": ilids}
    for name, body in files.items():
        payload = {"dataset": name, "seed": SEED, "generator": "torch.Generator + randperm",
                   "script": "scripts/make_splits.py", "num_splits": NUM_SPLITS, **body}
        (OUT / f"{name}.json").write_text(json.dumps(payload, separators=(",", ":")) + "\n")
        print(f"wrote {OUT / (name + '.json')}")


if __name__ == "__main__":
    main()
