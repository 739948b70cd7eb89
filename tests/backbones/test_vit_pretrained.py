"""load_pretrained for ViTs: OpenAI-CLIP and timm key layouts (reference modules in _vit_refs,
written from the real layouts), position-embedding resizing, vit_b16 on the meta device."""

import pytest
import torch
import torch.nn.functional as F

from dgblocks import DGBlocksError
from dgblocks.backbones import VisionTransformer, load_pretrained, vit_b16

from ._vit_refs import RefCLIP, RefTimmViT, randomise

TINY = dict(dim=32, depth=2, heads=4, patch_size=16)
TEXT = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.",
        "text_projection", "logit_scale", "input_resolution", "context_length", "vocab_size")


def _clip_sd(**kw):
    torch.manual_seed(0)
    return randomise(RefCLIP(**kw)).full_state_dict()


def _timm_sd(**kw):
    torch.manual_seed(0)
    return randomise(RefTimmViT(**kw)).state_dict()


def test_clip_full_state_dict_loads_every_tensor_and_matches_the_reference_forward():
    ref = randomise(RefCLIP()).eval()
    net = VisionTransformer(image_size=224, style="clip", proj_dim=16, **TINY).eval()
    report = load_pretrained(net, ref.full_state_dict())
    assert report.missing == [] and report.mismatched == [] and report.resized == []
    assert report.unexpected and all(k.startswith(TEXT) for k in report.unexpected)
    assert len(report.loaded) == len(net.state_dict())
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        f, fp = ref.visual(x)
        torch.testing.assert_close(net(x), f, rtol=1e-4, atol=1e-4)
        net.output = "proj"
        torch.testing.assert_close(net(x), fp, rtol=1e-4, atol=1e-4)


def test_timm_state_dict_loads_every_tensor_and_matches_the_reference_forward():
    ref = randomise(RefTimmViT()).eval()
    net = VisionTransformer(image_size=224, style="timm", **TINY).eval()
    report = load_pretrained(net, {"state_dict": {"module." + k: v
                                                  for k, v in ref.state_dict().items()}})
    assert report.missing == [] and report.mismatched == [] and report.resized == []
    assert sorted(report.unexpected) == ["head.bias", "head.weight"]
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(net(x), ref(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layout", ["clip", "timm"])
@pytest.mark.parametrize("stride", [16, 12])
def test_reid_grid_resizes_pos_embed_keeping_cls(layout, stride):
    sd = _clip_sd() if layout == "clip" else _timm_sd()
    pos = sd["visual.positional_embedding"][None] if layout == "clip" else sd["pos_embed"]
    net = VisionTransformer(style=layout, patch_stride=stride, proj_dim=16 if layout == "clip"
                            else None, **TINY)
    report = load_pretrained(net, sd)
    assert report.missing == [] and report.mismatched == [] and report.resized == ["pos_embed"]
    gh, gw = net.grid
    assert (gh, gw) == ((16, 8) if stride == 16 else (21, 10))
    got = net.pos_embed.detach()
    assert got.shape == (1, 1 + gh * gw, 32)
    assert torch.equal(got[:, 0], pos[:, 0])                      # [CLS] row kept as it is
    grid = pos[:, 1:].reshape(1, 14, 14, 32).permute(0, 3, 1, 2)  # the reference resize
    want = F.interpolate(grid, size=(gh, gw), mode="bicubic", antialias=True)
    torch.testing.assert_close(got[:, 1:], want.permute(0, 2, 3, 1).reshape(1, gh * gw, 32))
    assert net(torch.randn(2, 3, 256, 128)).shape == (2, 32)


def _meta_report(layout, stride):
    with torch.device("meta"):
        sd = (RefCLIP(width=768, layers=12, heads=12, out=512, text_width=512, text_layers=12)
              .full_state_dict() if layout == "clip" else RefTimmViT(width=768, layers=12,
                                                                      heads=12).state_dict())
        net = vit_b16(style=layout, image_size=(256, 128), patch_stride=stride)
    return net, sd, load_pretrained(net, sd)


@pytest.mark.parametrize("layout", ["clip", "timm"])
@pytest.mark.parametrize("stride", [16, 12])
def test_vit_b16_key_layout_loads_every_tensor(layout, stride):
    """ViT-B/16 at 256 x 128 (meta tensors: shapes only, no 350 MB of values)."""
    net, sd, report = _meta_report(layout, stride)
    assert report.missing == [] and report.mismatched == [], str(report)
    assert sorted(report.loaded) == sorted(net.state_dict()) and report.resized == ["pos_embed"]
    assert net.pos_embed.shape == (1, 1 + (128 if stride == 16 else 210), 768)
    if layout == "clip":
        assert all(k.startswith(TEXT) for k in report.unexpected) and len(report.unexpected) > 100
        assert net.proj.weight.shape == (512, 768) and net.out_channels == 768
    else:
        assert sorted(report.unexpected) == ["head.bias", "head.weight"]


def test_identity_when_grid_matches_and_wrapper_prefix_found():
    sd = _timm_sd()
    net = VisionTransformer(image_size=224, **TINY)
    holder = torch.nn.Module()
    holder.backbone = net
    report = load_pretrained(holder, sd)
    assert report.resized == [] and "backbone.pos_embed" in report.loaded
    assert torch.equal(net.pos_embed.detach(), sd["pos_embed"])
    again = VisionTransformer(patch_stride=12, **TINY)     # a saved ReID model reloads as is
    load_pretrained(again, _timm_sd())
    copy = VisionTransformer(patch_stride=12, **TINY)
    assert load_pretrained(copy, again.state_dict()).resized == []
    assert torch.equal(copy.pos_embed, again.pos_embed)


def test_clip_reid_prefix_and_fp16_checkpoint():
    sd = {k.replace("visual.", "image_encoder."): v.half() for k, v in _clip_sd().items()}
    net = VisionTransformer(style="clip", proj_dim=16, **TINY)
    report = load_pretrained(net, sd)
    assert report.missing == [] and net.pos_embed.dtype == torch.float32
    assert torch.equal(net.cls_token.detach().flatten(), sd["image_encoder.class_embedding"].float())


def test_style_mismatch_is_refused_by_name():
    with pytest.raises(DGBlocksError, match="model: .*style='clip'"):
        load_pretrained(VisionTransformer(style="timm", **TINY), _clip_sd())
    with pytest.raises(DGBlocksError, match="model: .*style='timm'"):
        load_pretrained(VisionTransformer(style="clip", **TINY), _timm_sd())


def test_shape_mismatch_reported_and_nothing_matching_raises():
    net = VisionTransformer(dim=64, depth=2, heads=4)         # another width: nothing fits
    with pytest.raises(DGBlocksError, match="state_dict: no floating-point tensor fits"):
        load_pretrained(net, _timm_sd())
    deeper = VisionTransformer(depth=3, dim=32, heads=4)       # one block more: reported
    report = load_pretrained(deeper, _timm_sd())
    assert report.missing and all(k.startswith("blocks.2.") for k in report.missing)
    smaller = VisionTransformer(patch_size=8, dim=32, depth=2, heads=4)
    report = load_pretrained(smaller, _timm_sd())
    assert "patch_embed.proj.weight" in report.mismatched


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_path_and_torchscript_archive(tmp_path):
    sd = _timm_sd()
    torch.save(sd, tmp_path / "vit.pth")
    net = VisionTransformer(**TINY)
    assert load_pretrained(net, tmp_path / "vit.pth").missing == []
    ref = randomise(RefCLIP()).eval()
    torch.jit.trace(ref.visual, torch.randn(1, 3, 224, 224), check_trace=False).save(
        str(tmp_path / "ViT-tiny.pt"))               # OpenAI ships TorchScript archives
    clip = VisionTransformer(style="clip", proj_dim=16, **TINY)
    report = load_pretrained(clip, str(tmp_path / "ViT-tiny.pt"))
    assert report.missing == [] and report.resized == ["pos_embed"]
    (tmp_path / "notes.txt").write_text("not weights")
    with pytest.raises(DGBlocksError, match="state_dict .*notes.txt"):
        load_pretrained(net, tmp_path / "notes.txt")
    torch.save({"conv1.weight": torch.ones(3)}, tmp_path / "resnet.pth")
    with pytest.raises(DGBlocksError, match="state_dict .*resnet.pth.*no floating-point"):
        load_pretrained(net, tmp_path / "resnet.pth")


@pytest.mark.slow
def test_vit_b16_real_values_load_and_forward():
    torch.set_num_threads(1)
    ref = RefCLIP(width=768, layers=12, heads=12, out=512, text_width=64, text_layers=1)
    net = vit_b16(style="clip", patch_stride=12)
    report = load_pretrained(net, ref.full_state_dict())
    assert report.missing == [] and report.mismatched == []
    assert torch.equal(net.blocks[11].attn.qkv.weight,
                       ref.visual.transformer.resblocks[11].attn.in_proj_weight)
    with torch.no_grad():
        assert net.eval()(torch.randn(1, 3, 256, 128)).shape == (1, 768)
