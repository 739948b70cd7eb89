"""load_pretrained: torchvision-, timm- and IBN-Net-named state dicts built here from the real
key layouts (reference modules written independently of dgblocks)."""

import pytest
import torch
from torch import nn

from dgblocks.backbones import (
    DualBranch,
    MobileNetV2,
    load_pretrained,
    resnet50,
    resnet50_ibn_a,
    timm_to_torchvision,
)


def _cba(cin, cout, k, s, g=1):  # torchvision's Conv2dNormActivation
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, groups=g, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6())


class TVInvertedResidual(nn.Module):
    def __init__(self, cin, cout, s, t):
        super().__init__()
        hid = cin * t
        layers = [] if t == 1 else [_cba(cin, hid, 1, 1)]
        layers += [_cba(hid, hid, 3, s, hid), nn.Conv2d(hid, cout, 1, bias=False),
                   nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)


class TVMobileNetV2(nn.Module):
    """torchvision.models.mobilenet_v2() key layout (width 1.0, 1000 classes)."""

    def __init__(self):
        super().__init__()
        feats, cin = [_cba(3, 32, 3, 2)], 32
        for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                           (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
            for i in range(n):
                feats.append(TVInvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        feats.append(_cba(cin, 1280, 1, 1))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))


class TVBottleneck(nn.Module):
    def __init__(self, cin, planes, s, ibn=False):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        if ibn:  # IBN-Net's official layout: bn1.IN / bn1.BN
            self.bn1 = nn.Module()
            self.bn1.IN = nn.InstanceNorm2d(planes // 2, affine=True)
            self.bn1.BN = nn.BatchNorm2d(planes - planes // 2)
        else:
            self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, s, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        if s != 1 or cin != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, s, bias=False),
                                            nn.BatchNorm2d(planes * 4))


class TVResNet50(nn.Module):
    """torchvision.models.resnet50() key layout (and IBN-Net's resnet50_ibn_a with ibn=True)."""

    def __init__(self, ibn=False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, n in enumerate([3, 4, 6, 3]):
            planes = 64 * 2**i
            blocks = []
            for j in range(n):
                blocks.append(TVBottleneck(cin, planes, (1 if i == 0 else 2) if j == 0 else 1,
                                           ibn and i < 3))
                cin = planes * 4
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(2048, 1000)


def _randomised(module):
    g = torch.Generator().manual_seed(0)
    return {k: (torch.randn(v.shape, generator=g) if v.is_floating_point() else v + 7)
            for k, v in module.state_dict().items()}


def test_torchvision_mobilenetv2_loads_without_missing_keys():
    sd = _randomised(TVMobileNetV2())
    assert "features.1.conv.0.0.weight" in sd and "features.2.conv.1.0.weight" in sd
    net = MobileNetV2(width_mult=1.0)
    report = load_pretrained(net, sd)
    assert report.missing == [] and report.mismatched == []
    assert sorted(report.unexpected) == ["classifier.1.bias", "classifier.1.weight"]
    own = net.state_dict()
    for k in ("features.0.0.weight", "features.17.conv.3.running_var", "features.18.1.bias",
              "features.5.conv.0.1.num_batches_tracked"):
        assert torch.equal(own[k], sd[k]), k


@pytest.mark.parametrize("ibn", [False, True])
def test_torchvision_resnet50_loads_without_missing_keys(ibn):
    sd = _randomised(TVResNet50(ibn=ibn))
    net = resnet50_ibn_a() if ibn else resnet50()
    report = load_pretrained(net, sd)
    assert report.missing == [] and report.mismatched == []
    assert sorted(report.unexpected) == ["fc.bias", "fc.weight"]
    own = net.state_dict()
    key = "layer2.0.bn1.IN.weight" if ibn else "layer4.2.bn3.running_mean"
    assert torch.equal(own[key], sd[key]) and torch.equal(own["conv1.weight"], sd["conv1.weight"])


def test_timm_mobilenetv2_names_map():
    tv = _randomised(TVMobileNetV2())
    inv = {}  # torchvision -> timm, written from timm's efficientnet naming
    offsets = [1, 2, 4, 7, 11, 14, 17]
    ds = {"conv.0.0": "conv_dw", "conv.0.1": "bn1", "conv.1": "conv_pw", "conv.2": "bn2"}
    ir = {"conv.0.0": "conv_pw", "conv.0.1": "bn1", "conv.1.0": "conv_dw", "conv.1.1": "bn2",
          "conv.2": "conv_pwl", "conv.3": "bn3"}
    for k in tv:
        parts = k.split(".")
        if k.startswith("features.0."):
            inv[k] = {"0": "conv_stem", "1": "bn1"}[parts[2]] + "." + ".".join(parts[3:])
        elif k.startswith("features.18."):
            inv[k] = {"0": "conv_head", "1": "bn2"}[parts[2]] + "." + ".".join(parts[3:])
        elif k.startswith("classifier."):
            inv[k] = "classifier." + parts[-1]
        else:
            idx = int(parts[1])
            s = max(i for i, o in enumerate(offsets) if o <= idx)
            table = ds if s == 0 else ir
            sub = next(p for p in sorted(table, key=len, reverse=True)
                       if ".".join(parts[2:]).startswith(p + "."))
            rest = ".".join(parts[2:])[len(sub) + 1:]
            inv[k] = f"blocks.{s}.{idx - offsets[s]}.{table[sub]}.{rest}"
    timm_sd = {"module." + inv[k]: v for k, v in tv.items()}
    assert timm_to_torchvision("blocks.0.0.conv_pw.weight") == "features.1.conv.1.weight"
    net = MobileNetV2()
    report = load_pretrained(net, {"state_dict": timm_sd})
    assert report.missing == [] and len(report.unexpected) == 2
    assert torch.equal(net.state_dict()["features.9.conv.2.weight"], tv["features.9.conv.2.weight"])


def test_prefix_found_and_mismatch_and_missing_reported():
    sd = _randomised(TVMobileNetV2())
    net = DualBranch(backbone=MobileNetV2(width_mult=1.0), dim=16)
    report = load_pretrained(net, sd)
    assert "backbone.features.3.conv.2.weight" in report.loaded
    assert all(not k.startswith("backbone.") for k in report.missing)
    small = MobileNetV2(width_mult=0.5)
    report = load_pretrained(small, sd)
    assert "features.0.0.weight" in report.mismatched and "features.0.0.weight" in report.missing
    dn = MobileNetV2.dualnorm()
    report = load_pretrained(dn, sd)
    assert report.missing and all(".inorm." in k for k in report.missing)
    assert "missing" in str(report)
