"""Latent-factor samplers (DIR-ReID backdoor adjustment): modules that wrap pure functions of
:mod:`dgblocks.functional`. Batch samplers (which images form a batch) are in
:mod:`dgblocks.data.batch_samplers`."""

from dgblocks.sampling.backdoor import BackdoorAdjustment, BackdoorResult, backdoor_linear

__all__ = [
    "BackdoorAdjustment",
    "BackdoorResult",
    "backdoor_linear",
]
