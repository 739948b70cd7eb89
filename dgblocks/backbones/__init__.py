"""Backbones in plain torch (torchvision/timm names, so their weights load).

MobileNetV2 (width multiplier; DualNorm IN variant), ResNet-50 and ResNet-50-IBN-a, ViT-B/16
(timm or OpenAI-CLIP style, ReID input size and overlapping patches), the digits CNN of
DIR-ReID Table 6, ADIN's dual-branch head; stage surgery and pretrained-weight loading.
"""

from dgblocks.backbones.digits_cnn import DigitsCNN
from dgblocks.backbones.dual_branch import DualBranch
from dgblocks.backbones.factory import BACKBONES, build_backbone
from dgblocks.backbones.mobilenetv2 import InvertedResidual, MobileNetV2, make_divisible
from dgblocks.backbones.pretrained import LoadReport, load_pretrained, timm_to_torchvision
from dgblocks.backbones.resnet import IBN, Bottleneck, ResNet, resnet50, resnet50_ibn_a
from dgblocks.backbones.stages import insert_after, named_stages, replace_stage
from dgblocks.backbones.vit import VisionTransformer, vit_b16, vit_tiny
from dgblocks.backbones.vit_weights import clip_to_timm, from_clip, resize_pos_embed

__all__ = [
    "MobileNetV2", "InvertedResidual", "make_divisible",
    "ResNet", "Bottleneck", "IBN", "resnet50", "resnet50_ibn_a",
    "VisionTransformer", "vit_b16", "vit_tiny", "resize_pos_embed", "clip_to_timm", "from_clip",
    "DigitsCNN", "DualBranch",
    "BACKBONES", "build_backbone",
    "named_stages", "replace_stage", "insert_after",
    "LoadReport", "load_pretrained", "timm_to_torchvision",
]
