"""dgblocks.methods: the method interface and the baseline every method extends.

- :class:`Method` (with :class:`Stage`, :class:`Batch`): one training algorithm, built from
  ``(cfg, bench)``, with ``update(batch) -> logs`` and ``encode(x)``; the engine's one loop
  (:func:`dgblocks.engine.fit`) runs any of them, with exact resume and stage caches.
- :class:`ReIDNet` (backbone + BNNeck + input normalisation; :class:`StageBlock` runs
  domain-aware blocks inside backbone stages) and :class:`AGG` (:class:`AGGConfig`), the
  bag-of-tricks baseline that the recipes and new methods extend by adding terms.
- :class:`NuisanceAdversary`: self-training nuisance heads and the encoder's loss against them.
- :class:`OptimConfig`, :class:`TrainConfig`: the config fields every method shares.
- :class:`LocalContext`: a method's context outside the engine (tests, a loop of one's own).
- search spaces beside each ``Config``: :class:`LogUniform`, :class:`Uniform`, :class:`Choice`,
  :func:`around` (``scripts/search.py`` runs them on Optuna).

See ``docs/new_method.md`` for a new method built from blocks of three papers.
"""

from dgblocks.methods.adversary import ADVERSARIAL_LOSSES, NuisanceAdversary
from dgblocks.methods.agg import AGG, AGGConfig, owned_parameters
from dgblocks.methods.config import OptimConfig, TrainConfig
from dgblocks.methods.context import LocalContext
from dgblocks.methods.method import Method
from dgblocks.methods.reidnet import ReIDNet, StageBlock
from dgblocks.methods.search import (
    Choice,
    LogUniform,
    Uniform,
    around,
    as_flags,
    check_space,
    sample_space,
)
from dgblocks.methods.stage import Batch, Stage

__all__ = ["Method", "Stage", "Batch", "ReIDNet", "StageBlock", "AGG", "AGGConfig",
           "NuisanceAdversary", "ADVERSARIAL_LOSSES", "OptimConfig", "TrainConfig",
           "owned_parameters", "LocalContext", "LogUniform", "Uniform", "Choice", "around",
           "check_space", "sample_space", "as_flags"]
