"""Loss modules; each wraps a pure function of :mod:`dgblocks.functional` (``functional_name``)."""

from dgblocks.losses.adversarial import ReverseCrossEntropy
from dgblocks.losses.cross_entropy import LabelSmoothingCE
from dgblocks.losses.entropy import CalibratedNegEntropy, NegEntropy
from dgblocks.losses.symmetric_kl import SymmetricKL

__all__ = [
    "NegEntropy",
    "CalibratedNegEntropy",
    # adversarial.py, cross_entropy.py, symmetric_kl.py (losses part 1)
    "ReverseCrossEntropy",
    "LabelSmoothingCE",
    "SymmetricKL",
]
