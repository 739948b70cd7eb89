"""Loss modules; each wraps a pure function of :mod:`dgblocks.functional` (``functional_name``)."""

from dgblocks.losses.entropy import CalibratedNegEntropy, NegEntropy

__all__ = [
    "NegEntropy",
    "CalibratedNegEntropy",
]
