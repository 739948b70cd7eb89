"""Drop-in ``nn.Module`` layers."""

from dgblocks.layers.bnneck import BNNeck, BNNeckOutput
from dgblocks.layers.grl import GradientReversal
from dgblocks.layers.schedules import ConstantSchedule, DannSchedule
from dgblocks.layers.style import CrossDomainStyle, StyleFusion

__all__: list[str] = [
    # grl.py, schedules.py
    "GradientReversal",
    "ConstantSchedule",
    "DannSchedule",
    # bnneck.py
    "BNNeck",
    "BNNeckOutput",
    # style.py (structured blocks)
    "CrossDomainStyle",
    "StyleFusion",
]
