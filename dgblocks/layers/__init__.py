"""Drop-in ``nn.Module`` layers.

ADIN's alternating schedule (a plain state machine, not a module) is
:class:`dgblocks.layers.alternation.AlternatingSchedule`.
"""

from dgblocks.layers.bnneck import BNNeck, BNNeckOutput
from dgblocks.layers.disentangled import DisentangledEncoders, DisentangledOutput
from dgblocks.layers.global_local import GlobalLocalBlock, GlobalLocalOutput
from dgblocks.layers.grl import GradientReversal
from dgblocks.layers.heads import CentralDomainDiscriminator, NuisanceHeads
from dgblocks.layers.hypernet import SubspaceHypernet, SubspaceOutput
from dgblocks.layers.schedules import ConstantSchedule, DannSchedule
from dgblocks.layers.style import CrossDomainStyle
from dgblocks.layers.style_fusion import StyleFusion

__all__: list[str] = [
    # grl.py, schedules.py
    "GradientReversal",
    "ConstantSchedule",
    "DannSchedule",
    # bnneck.py
    "BNNeck",
    "BNNeckOutput",
    # style.py, style_fusion.py
    "CrossDomainStyle",
    "StyleFusion",
    # disentangled.py, global_local.py, hypernet.py, heads.py
    "DisentangledEncoders",
    "DisentangledOutput",
    "GlobalLocalBlock",
    "GlobalLocalOutput",
    "SubspaceHypernet",
    "SubspaceOutput",
    "CentralDomainDiscriminator",
    "NuisanceHeads",
]
