"""A new method from blocks of three papers, on the AGG baseline (docs/new_method.md).

AGG (CE_eps + triplet on a BNNeck, ``dgblocks.methods.AGG``) plus
    1. CDVM's cross-domain style expansion (Li et al. 2025, eq 6-8) after backbone stage 2:
       each domain's feature statistics are re-drawn from the other domains' (training only);
    2. ADIN's calibrated nuisance adversary (Yuan et al. 2020, eq 6, CaNE) on the cameras:
       the encoder pushes the frozen camera heads towards the camera prior; the heads are
       then trained by cross-entropy on the detached features;
    3. DDAN's ID-pool term (Chen et al. 2021, eq 8, L_SE): the feature is pulled towards its
       k nearest identities of the other domains (the central domain: its own), by a
       symmetric KL at temperature tau; the pool is updated after the step (eq 6-7).
With ``--no-style --beta 0 --lambda-se 0`` it is ``recipes/baseline.py`` exactly.

    python examples/new_method.py --smoke                 # seconds
    python examples/new_method.py                         # 300 steps, as recipes/baseline.py
"""

from __future__ import annotations

from dataclasses import dataclass

from dgblocks.engine import arg, train
from dgblocks.layers import CrossDomainStyle
from dgblocks.losses import SymmetricKL
from dgblocks.memory import IDPool
from dgblocks.methods import AGG, AGGConfig, NuisanceAdversary


@dataclass
class Config(AGGConfig):
    style: bool = arg(True, "1. cross-domain style after --style-stage (CDVM eq 6-8)")
    style_stage: str = arg("layer2", "the backbone stage the style block follows")
    beta: float = arg(0.1, "2. weight of the CaNE camera adversary (ADIN eq 3, 6)")
    lambda_se: float = arg(0.05, "3. weight of the ID-pool term L_SE (DDAN eq 8-9)")
    tau: float = arg(2e-3, "L_SE temperature (DDAN 4.1)")
    k: int = arg(8, "ID-pool neighbours (DDAN 4.4)")


class StyleAdversaryPool(AGG):
    """AGG + cross-domain style + CaNE camera adversary + DDAN ID-pool term."""

    Config = Config

    def __init__(self, cfg: Config, bench, *, seed: int = 0) -> None:
        super().__init__(cfg, bench, seed=seed)      # self.net: ReIDNet (backbone + BNNeck)
        if cfg.style:                                # 1. a block that needs the domains
            self.net.insert_after(cfg.style_stage, CrossDomainStyle(num_domains=bench.num_domains))
        cams = self.cameras(bench.train.domains, bench.train.camids)
        self.adversary = NuisanceAdversary(          # 2. heads with their own optimiser
            in_dim=self.net.dim, sizes={"camera": int(cams.max()) + 1}, loss="cane",
            labels={"camera": cams}, weight_decay=cfg.weight_decay)
        self.pool = IDPool(num_ids=bench.num_ids, dim=self.net.dim,  # 3. a memory bank
                           num_domains=bench.num_domains, k=cfg.k, central=0)
        self.skl = SymmetricKL(tau=cfg.tau)

    def cameras(self, domains, camids):
        """One camera label per (domain, camera) pair: cameras of different datasets differ."""
        return domains * (int(self.bench.train.camids.max()) + 1) + camids

    def terms(self, out, batch):
        terms = super().terms(out, batch)            # l_id, l_tri
        f, cam = out.feat_pre_bn, {"camera": self.cameras(batch.domains, batch.camids)}
        terms["l_cane"] = self.cfg.beta * self.adversary(f, cam)
        if self.ctx.new_epoch and self.ctx.step > 0:
            self.pool.end_epoch()                    # eq 7: blend at each epoch boundary
        nb = self.pool.topk(f, batch.domains, labels=batch.pids)
        terms["l_se"] = self.cfg.lambda_se * self.skl(f, nb.values.to(f), nb.valid) / f.shape[1]
        return terms

    def after_update(self, out, batch):
        f = out.feat_pre_bn.detach()
        cam = {"camera": self.cameras(batch.domains, batch.camids)}
        self.pool.update(f, labels=batch.pids, domains=batch.domains)
        return {"l_heads": self.adversary.update(f, cam)}

    def describe(self) -> str:
        c = self.cfg
        return f"AGG + style {c.style} + CaNE {c.beta} + L_SE {c.lambda_se} ({c.backbone})"


def main(argv=None) -> dict:
    return train(StyleAdversaryPool, argv, name="new_method", description=__doc__)


if __name__ == "__main__":
    main()
