"""dgblocks: small, composable PyTorch blocks for domain-generalizable person re-identification.

Pure functions live in :mod:`dgblocks.functional`; modules in :mod:`dgblocks.losses`,
:mod:`dgblocks.layers`, :mod:`dgblocks.sampling`, :mod:`dgblocks.memory`; domain tools in
:mod:`dgblocks.domains`.
"""

from dgblocks._checks import DGBlocksError, ShapeError, ValueRangeError, checks

__all__ = ["DGBlocksError", "ShapeError", "ValueRangeError", "checks", "__version__"]
__version__ = "0.1.0"
