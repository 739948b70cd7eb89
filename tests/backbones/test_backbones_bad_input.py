"""Bad input for every public name of dgblocks.backbones: a ``ValueError`` subclass whose message
names the argument (the contract of tests/test_bad_input.py, for the backbones package)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import dgblocks
import dgblocks.backbones as B

NOT_CALLABLE = {"BACKBONES": "a tuple of names", "LoadReport": "a result dataclass"}


def c(fn: Callable, *a: Any, **k: Any) -> Callable[[], Any]:
    return lambda: fn(*a, **k)


def _tiny_resnet() -> nn.Module:
    return B.ResNet(layers=(1, 1, 1, 1), base_width=4)


def _vit(**k: Any) -> B.VisionTransformer:
    return B.VisionTransformer(**{"dim": 8, "depth": 1, "heads": 2, **k})


def _call(make: Callable[[], nn.Module], x: Any) -> Callable[[], Any]:
    return lambda: make()(x)


def _feat(make: Callable[[], nn.Module], x: Any) -> Callable[[], Any]:
    return lambda: make().forward_features(x)


X = torch.zeros(1, 3, 64, 32)
VIT_SD = {"cls_token": torch.zeros(1, 1, 8)}
CASES: dict[str, list[tuple[str, Callable[[], Any], str]]] = {
    "make_divisible": [("div0", c(B.make_divisible, 16, 0), "divisor"),
                       ("div-float", c(B.make_divisible, 16, 2.5), "divisor"),
                       ("v-neg", c(B.make_divisible, -3), "v"),
                       ("v-nan", c(B.make_divisible, float("nan")), "v"),
                       ("v-str", c(B.make_divisible, "16"), "v")],
    "InvertedResidual": [
        ("cin", c(B.InvertedResidual, in_channels=0, out_channels=8, stride=1, expand_ratio=6),
         "in_channels"),
        ("cout", c(B.InvertedResidual, in_channels=8, out_channels=-1, stride=1, expand_ratio=6),
         "out_channels"),
        ("stride", c(B.InvertedResidual, in_channels=8, out_channels=8, stride=3,
                     expand_ratio=6), "stride"),
        ("ratio", c(B.InvertedResidual, in_channels=8, out_channels=8, stride=1,
                    expand_ratio=0), "expand_ratio")],
    "MobileNetV2": [("width", c(B.MobileNetV2, width_mult=0.0), "width_mult"),
                    ("width-str", c(B.MobileNetV2, width_mult="1"), "width_mult"),
                    ("stride", c(B.MobileNetV2, last_stride=3), "last_stride"),
                    ("cin", c(B.MobileNetV2, in_channels=0), "in_channels"),
                    ("inorm", c(B.MobileNetV2, instance_norm_blocks=18), "instance_norm_blocks"),
                    ("last", c(B.MobileNetV2, last_channel=0), "last_channel"),
                    ("x-3d", _call(lambda: B.MobileNetV2(width_mult=0.25), torch.zeros(3, 8, 8)),
                     "x"),
                    ("x-list", _feat(lambda: B.MobileNetV2(width_mult=0.25), [1.0]), "x")],
    "IBN": [("channels", c(B.IBN, channels=0), "channels"),
            ("channels-float", c(B.IBN, channels=8.0), "channels"),
            ("ratio", c(B.IBN, channels=8, ratio=1.5), "ratio")],
    "Bottleneck": [("cin", c(B.Bottleneck, in_channels=0, planes=4), "in_channels"),
                   ("planes", c(B.Bottleneck, in_channels=8, planes=0), "planes"),
                   ("stride", c(B.Bottleneck, in_channels=8, planes=4, stride=0), "stride")],
    "ResNet": [("layers-len", c(B.ResNet, layers=(1, 1, 1)), "layers"),
               ("layers-0", c(B.ResNet, layers=(1, 0, 1, 1)), "layers[1]"),
               ("layers-int", c(B.ResNet, layers=3), "layers"),
               ("width", c(B.ResNet, base_width=0), "base_width"),
               ("stride", c(B.ResNet, last_stride=3), "last_stride"),
               ("cin", c(B.ResNet, in_channels=0), "in_channels"),
               ("x-3d", _call(_tiny_resnet, torch.zeros(3, 8, 8)), "x"),
               ("x-channels", _call(_tiny_resnet, torch.zeros(1, 1, 32, 16)), "x")],
    "resnet50": [("stride", c(B.resnet50, last_stride=0), "last_stride")],
    "resnet50_ibn_a": [("stride", c(B.resnet50_ibn_a, last_stride="1"), "last_stride")],
    "VisionTransformer": [
        ("dim", c(_vit, dim=0), "dim"), ("depth", c(_vit, depth=0), "depth"),
        ("heads", c(_vit, heads=3), "heads"), ("heads-0", c(_vit, heads=0), "heads"),
        ("patch", c(_vit, patch_size=0), "patch_size"),
        ("stride-big", c(_vit, patch_stride=17), "patch_stride"),
        ("stride-0", c(_vit, patch_stride=0), "patch_stride"),
        ("size-small", c(_vit, image_size=(8, 128)), "image_size"),
        ("size-3", c(_vit, image_size=(256, 128, 3)), "image_size"),
        ("size-float", c(_vit, image_size=(256.0, 128)), "image_size[0]"),
        ("style", c(_vit, style="openai"), "style"),
        ("output", c(_vit, output="avg"), "output"),
        ("proj-missing", c(_vit, output="proj"), "proj_dim"),
        ("proj-0", c(_vit, proj_dim=0), "proj_dim"),
        ("mlp", c(_vit, mlp_ratio=0.0), "mlp_ratio"), ("mlp-str", c(_vit, mlp_ratio="4"),
                                                       "mlp_ratio"),
        ("drop", c(_vit, drop_path=1.0), "drop_path"), ("cin", c(_vit, in_channels=0),
                                                        "in_channels"),
        ("x-3d", _call(_vit, torch.zeros(3, 256, 128)), "x"),
        ("x-channels", _call(_vit, torch.zeros(1, 1, 256, 128)), "x"),
        ("x-small", _call(_vit, torch.zeros(1, 3, 8, 128)), "x"),
        ("x-size", _call(lambda: _vit(dynamic_size=False), X), "x"),
        ("x-list", _feat(_vit, [[1.0]]), "x")],
    "vit_b16": [("style", c(B.vit_b16, style="jax"), "style"),
                ("stride", c(B.vit_b16, patch_stride=32), "patch_stride")],
    "vit_tiny": [("size", c(B.vit_tiny, image_size=(0, 128)), "image_size[0]"),
                 ("size-str", c(B.vit_tiny, image_size="256x128"), "image_size")],
    "resize_pos_embed": [
        ("2d", c(B.resize_pos_embed, torch.zeros(197, 8), (16, 8)), "pos_embed"),
        ("list", c(B.resize_pos_embed, [[0.0]], (16, 8)), "pos_embed"),
        ("grid", c(B.resize_pos_embed, torch.zeros(1, 197, 8), (0, 8)), "grid[0]"),
        ("grid-int", c(B.resize_pos_embed, torch.zeros(1, 197, 8), 16), "grid"),
        ("old-grid", c(B.resize_pos_embed, torch.zeros(1, 197, 8), (16, 8), old_grid=(7, 7)),
         "pos_embed"),
        ("not-square", c(B.resize_pos_embed, torch.zeros(1, 1 + 12, 8), (4, 4)), "pos_embed"),
        ("prefix", c(B.resize_pos_embed, torch.zeros(1, 197, 8), (16, 8), num_prefix_tokens=-1),
         "num_prefix_tokens"),
        ("mode", c(B.resize_pos_embed, torch.zeros(1, 197, 8), (16, 8), interpolation="area"),
         "interpolation")],
    "clip_to_timm": [("int", c(B.clip_to_timm, 3), "key"), ("none", c(B.clip_to_timm, None),
                                                            "key")],
    "from_clip": [("list", c(B.from_clip, [("visual.proj", torch.zeros(2, 2))]), "state"),
                  ("prefix", c(B.from_clip, {}, prefix=3), "prefix")],
    "DigitsCNN": [("out", c(B.DigitsCNN, out_dim=0), "out_dim"),
                  ("cin", c(B.DigitsCNN, in_channels=0), "in_channels"),
                  ("size", c(B.DigitsCNN, image_size=(8, 8)), "image_size"),
                  ("size-int", c(B.DigitsCNN, image_size=28), "image_size"),
                  ("x-size", _call(B.DigitsCNN, torch.zeros(1, 1, 32, 32)), "x")],
    "DualBranch": [("backbone", c(B.DualBranch, backbone=nn.Linear(2, 2)), "backbone"),
                   ("stripes", c(B.DualBranch, backbone=_tiny_resnet(), num_stripes=0),
                    "num_stripes"),
                   ("dim", c(B.DualBranch, backbone=_tiny_resnet(), dim=0), "dim"),
                   ("vit", _call(lambda: B.DualBranch(backbone=_vit(), dim=4), X),
                    "backbone output")],
    "build_backbone": [("name", c(B.build_backbone, "vgg16"), "name"),
                       ("name-list", c(B.build_backbone, ["resnet50"]), "name"),
                       ("width", c(B.build_backbone, "mobilenetv2", width=0.0), "width"),
                       ("stride", c(B.build_backbone, "vit_tiny", patch_stride=0),
                        "patch_stride"),
                       ("last", c(B.build_backbone, "vit_tiny", last_channel=0), "proj_dim")],
    "named_stages": [("model", c(B.named_stages, nn.Linear(2, 2)), "model"),
                     ("model-str", c(B.named_stages, "resnet"), "model")],
    "replace_stage": [("name", c(B.replace_stage, _tiny_resnet(), "layer9", lambda m: m), "name"),
                      ("make", c(B.replace_stage, _tiny_resnet(), "layer4", None), "make"),
                      ("made", c(B.replace_stage, _tiny_resnet(), "layer4", lambda m: 3), "make"),
                      ("model", c(B.replace_stage, nn.Linear(2, 2), "layer4", lambda m: m),
                       "model")],
    "insert_after": [("block", c(B.insert_after, _tiny_resnet(), "layer2", "relu"), "block"),
                     ("name", c(B.insert_after, _tiny_resnet(), "fc", nn.ReLU()), "name")],
    "load_pretrained": [
        ("model", c(B.load_pretrained, "resnet50", {}), "model"),
        ("state-int", c(B.load_pretrained, _tiny_resnet(), 3), "state_dict"),
        ("state-list", c(B.load_pretrained, _tiny_resnet(), [torch.zeros(1)]), "state_dict"),
        ("state-empty", c(B.load_pretrained, _tiny_resnet(), {}), "state_dict"),
        ("no-tensor", c(B.load_pretrained, _tiny_resnet(), {"conv1.weight": "w"}), "state_dict"),
        ("unrelated", c(B.load_pretrained, _tiny_resnet(), {"encoder.w": torch.zeros(2)}),
         "state_dict"),
        ("only-counters", c(B.load_pretrained, _tiny_resnet(),
                            {"bn1.num_batches_tracked": torch.tensor(3)}), "state_dict"),
        ("wrong-shapes", c(B.load_pretrained, _tiny_resnet(), B.resnet50().state_dict()),
         "state_dict"),
        ("vit-vs-cnn", c(B.load_pretrained, _tiny_resnet(), _vit().state_dict()), "state_dict"),
        ("no-file", c(B.load_pretrained, _tiny_resnet(), "/nonexistent/w.pth"), "state_dict"),
        ("empty-model", c(B.load_pretrained, nn.ReLU(), VIT_SD), "model")],
    "timm_to_torchvision": [("int", c(B.timm_to_torchvision, 3), "key")],
}


def test_every_public_name_has_cases():
    public = set(B.__all__)
    missing = sorted(public - set(CASES) - set(NOT_CALLABLE))
    assert not missing, f"add bad-input cases for {missing}"
    assert set(CASES) | set(NOT_CALLABLE) <= public, "stale entries"
    for name in NOT_CALLABLE:
        obj = getattr(B, name)
        assert not inspect.isfunction(obj) and not (inspect.isclass(obj)
                                                    and issubclass(obj, nn.Module)), name


ALL = [pytest.param(fn, arg, id=f"{name}-{case}") for name, cases in CASES.items()
       for case, fn, arg in cases]


@pytest.mark.parametrize(("call", "arg"), ALL)
def test_bad_input_raises_value_error_naming_the_argument(call, arg):
    with pytest.raises(ValueError) as info:
        call()
    assert isinstance(info.value, dgblocks.DGBlocksError) or type(info.value) is ValueError
    assert str(info.value).startswith(f"{arg}") or f"{arg}:" in str(info.value), str(info.value)
