"""dgblocks.meta: meta-learning DG (CDVM section 3.5, MLDG).

- :mod:`dgblocks.meta.objective`: the second-order meta step :func:`meta_objective` /
  :class:`MetaObjective` (with :func:`module_params`, :func:`module_loss`)
- :mod:`dgblocks.meta.norm`: batch norm with a closed-form double backward
  (:func:`batch_norm_train`, :class:`FusedNormDoubleBackward`)
- :mod:`dgblocks.meta.split`: meta-train / meta-test domain splits (:class:`MetaDomainSplitter`)
"""

from dgblocks.meta.norm import FusedNormDoubleBackward, batch_norm_train
from dgblocks.meta.objective import (
    MetaObjective,
    MetaOutput,
    meta_objective,
    module_loss,
    module_params,
)
from dgblocks.meta.split import MetaDomainSplitter

__all__ = [
    "meta_objective",
    "MetaObjective",
    "MetaOutput",
    "module_params",
    "module_loss",
    "batch_norm_train",
    "FusedNormDoubleBackward",
    "MetaDomainSplitter",
]
