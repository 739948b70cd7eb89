"""Loss modules; each wraps a pure function of :mod:`dgblocks.functional` (``functional_name``)."""

from dgblocks.losses.adversarial import ReverseCrossEntropy
from dgblocks.losses.center import CenterLoss
from dgblocks.losses.consistency import ConsistencyLoss
from dgblocks.losses.cross_entropy import LabelSmoothingCE
from dgblocks.losses.entropy import CalibratedNegEntropy, NegEntropy
from dgblocks.losses.parameter_cosine import ParameterCosine
from dgblocks.losses.subspace import SubspaceConsistency, SubspaceDiversity
from dgblocks.losses.symmetric_kl import SymmetricKL
from dgblocks.losses.triplet import TripletLoss

__all__ = [
    "NegEntropy",
    "CalibratedNegEntropy",
    # adversarial.py, cross_entropy.py, symmetric_kl.py
    "ReverseCrossEntropy",
    "LabelSmoothingCE",
    "SymmetricKL",
    # triplet.py, center.py, parameter_cosine.py, subspace.py, consistency.py
    "TripletLoss",
    "CenterLoss",
    "ParameterCosine",
    "SubspaceDiversity",
    "SubspaceConsistency",
    "ConsistencyLoss",
]
