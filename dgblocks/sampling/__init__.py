"""Latent-factor samplers: modules that wrap pure functions of :mod:`dgblocks.functional`."""

from dgblocks.sampling.backdoor import BackdoorAdjustment, BackdoorResult, backdoor_linear

__all__ = [
    "BackdoorAdjustment",
    "BackdoorResult",
    "backdoor_linear",
]
