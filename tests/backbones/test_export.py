"""ONNX and TorchScript export of the inference encoders round-trip (outputs match PyTorch)."""

import pytest
import torch
from torch import nn

from dgblocks.backbones import DigitsCNN, DualBranch, MobileNetV2, ResNet, VisionTransformer
from dgblocks.engine.export import ExportMismatch, export_onnx, export_torchscript, run_onnx


def _nets():
    return {
        "mobilenetv2": (MobileNetV2(width_mult=0.25, last_stride=1, last_channel=64),
                        (3, 64, 32)),
        "dualnorm": (MobileNetV2.dualnorm(width_mult=0.25, last_channel=64), (3, 64, 32)),
        "resnet_ibn": (ResNet(layers=(1, 1, 1, 1), base_width=8, ibn=True), (3, 64, 32)),
        "digits": (DigitsCNN(out_dim=8), (1, 28, 28)),
        "dual_branch": (DualBranch(backbone=ResNet(layers=(1, 1, 1, 1), base_width=8),
                                   num_stripes=2, dim=8), (3, 64, 32)),
        "vit": (VisionTransformer(image_size=(64, 32), dim=32, depth=2, heads=4, style="clip"),
                (3, 64, 32)),
    }


def _settle_bn(net, shape):
    net.train()
    with torch.no_grad():
        net(torch.rand(4, *shape))  # non-trivial running statistics
    return net.eval()


SLOW = pytest.mark.slow


@pytest.mark.parametrize("name", ["mobilenetv2", "resnet_ibn", "digits", "vit",
                                  pytest.param("dualnorm", marks=SLOW),
                                  pytest.param("dual_branch", marks=SLOW)])
def test_onnx_round_trip(tmp_path, name):
    net, shape = _nets()[name]
    net = _settle_bn(net, shape)
    x = torch.rand(2, *shape, generator=torch.Generator().manual_seed(0))
    path = export_onnx(net, tmp_path / f"{name}.onnx", x)  # checks against PyTorch itself
    x3 = torch.rand(3, *shape)  # dynamic batch axis
    got = torch.as_tensor(run_onnx(path, x3))
    assert torch.allclose(got, net(x3).detach(), atol=1e-4, rtol=1e-3)


@pytest.mark.slow
def test_onnx_dynamo_exporter(tmp_path):
    net, shape = _nets()["digits"]
    net = _settle_bn(net, shape)
    path = export_onnx(net, tmp_path / "d.onnx", torch.rand(2, *shape), dynamo=True)
    x3 = torch.rand(3, *shape)
    assert torch.allclose(torch.as_tensor(run_onnx(path, x3)), net(x3).detach(), atol=1e-4)


@pytest.mark.parametrize("name", ["resnet_ibn", "vit", pytest.param("mobilenetv2", marks=SLOW)])
def test_torchscript_round_trip(tmp_path, name):
    net, shape = _nets()[name]
    net = _settle_bn(net, shape)
    path = export_torchscript(net, tmp_path / "m.pt", torch.rand(2, *shape))
    x = torch.rand(3, *shape)
    with torch.jit.optimized_execution(False):
        assert torch.allclose(torch.jit.load(str(path))(x), net(x), atol=1e-5)


class _Flaky(nn.Module):
    """Differs between the traced graph and eager PyTorch (a Python-side branch)."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x.flatten(1) * (1.0 if self.calls == 1 else 2.0)


def test_mismatch_is_reported(tmp_path):
    with pytest.raises(ExportMismatch, match="torchscript"):
        export_torchscript(_Flaky(), tmp_path / "f.pt", torch.rand(1, 1, 2, 2))
    with pytest.raises(ValueError, match="example"):
        export_onnx(nn.Identity(), tmp_path / "x.onnx", torch.rand(2, 3))
