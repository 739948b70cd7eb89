import pytest
import torch

from dgblocks.backbones import BACKBONES, build_backbone


@pytest.mark.parametrize("name", [n for n in BACKBONES if n not in ("resnet50", "resnet50_ibn_a",
                                                                     "vit_b16")])
def test_every_small_backbone_builds_and_matches_out_channels(name):
    net = build_backbone(name, width=0.25).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 64, 32))
        feats = net.forward_features(torch.rand(1, 3, 64, 32))
    assert out.shape == (2, net.out_channels)
    channel_axis = 2 if name.startswith("vit") else 1  # ViT: tokens (B, 1 + N, D)
    assert feats.shape[channel_axis] == net.out_channels
    assert len(net.stage_names) >= 4


def test_resnet50s_have_the_papers_width_and_ibn():
    assert build_backbone("resnet50").out_channels == 2048
    assert type(build_backbone("resnet50_ibn_a").layer1[0].bn1).__name__ == "IBN"
    assert type(build_backbone("resnet_tiny", ibn=True).layer1[0].bn1).__name__ == "IBN"
    assert type(build_backbone("resnet_tiny").layer1[0].bn1).__name__ == "BatchNorm2d"


def test_dualnorm_has_instance_norm_and_mobilenet_last_channel():
    names = {type(m).__name__ for m in build_backbone("dualnorm").modules()}
    assert "InstanceNorm2d" in names
    assert "InstanceNorm2d" not in {type(m).__name__ for m in build_backbone("mobilenetv2").modules()}
    assert build_backbone("mobilenetv2", last_channel=64).out_channels == 64


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="name"):
        build_backbone("vgg16")
    with pytest.raises(ValueError, match="width"):
        build_backbone("mobilenetv2", width=0.0)
    with pytest.raises(ValueError, match="patch_stride"):
        build_backbone("vit_tiny", patch_stride=20)
    with pytest.raises(ValueError, match="style"):
        build_backbone("vit_tiny", style="openai")
    with pytest.raises(ValueError, match="image_size"):
        build_backbone("vit_tiny", image_size=(8, 8))
