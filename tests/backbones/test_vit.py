"""VisionTransformer: ReID shapes, overlapping patches, styles, stage split, training, and the
resize_pos_embed invariants (hypothesis)."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from dgblocks.backbones import (
    VisionTransformer,
    build_backbone,
    replace_stage,
    resize_pos_embed,
    vit_b16,
    vit_tiny,
)

SMALL = dict(dim=32, depth=2, heads=4)
seeds = st.integers(0, 2**16)
grids = st.tuples(st.integers(1, 9), st.integers(1, 9))


@pytest.mark.parametrize("stride, grid", [(16, (16, 8)), (12, (21, 10)), (8, (31, 15))])
def test_reid_shapes_and_overlapping_grid(stride, grid):
    net = VisionTransformer(patch_stride=stride, **SMALL).eval()
    x = torch.randn(2, 3, 256, 128)
    tokens = net.forward_features(x)
    assert net.grid == grid and tokens.shape == (2, 1 + grid[0] * grid[1], 32)
    assert net(x).shape == (2, net.out_channels) == (2, 32)
    assert net.pos_embed.shape == (1, 1 + grid[0] * grid[1], 32)


def test_invariants_forward_is_cls_of_normed_tokens_and_proj_option():
    net = VisionTransformer(style="clip", proj_dim=16, **SMALL).eval()
    x = torch.randn(2, 3, 256, 128)
    with torch.no_grad():
        tokens = net.forward_tokens(x)
        feats = net.forward_features(x)
        torch.testing.assert_close(feats, net.norm(tokens))
        torch.testing.assert_close(net(x), feats[:, 0])
        net.output = "proj"
        torch.testing.assert_close(net(x), feats[:, 0] @ net.proj.weight.t())
    assert VisionTransformer(proj_dim=16, output="proj", **SMALL).out_channels == 16
    assert VisionTransformer(proj_dim=16, **SMALL).out_channels == 32


@given(seed=seeds, b=st.integers(1, 3), stride=st.sampled_from([8, 12, 16]),
       style=st.sampled_from(["timm", "clip"]), output=st.sampled_from(["cls", "proj"]))
def test_forward_is_pooled_norm_of_tokens(seed, b, stride, style, output):
    torch.manual_seed(seed)
    net = VisionTransformer(image_size=(64, 32), patch_stride=stride, style=style, proj_dim=8,
                            output=output, dim=16, depth=2, heads=2).eval()
    x = torch.randn(b, 3, 64, 32, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        feats = net.forward_features(x)
        torch.testing.assert_close(feats, net.norm(net.forward_tokens(x)))
        cls = net.pool(feats)
        want = net.proj(cls) if output == "proj" else cls
        torch.testing.assert_close(net(x), want)
    assert want.shape == (b, net.out_channels)


def test_styles_differ_where_the_checkpoints_do():
    timm, clip = VisionTransformer(**SMALL), VisionTransformer(style="clip", **SMALL)
    assert isinstance(timm.norm_pre, nn.Identity) and isinstance(clip.norm_pre, nn.LayerNorm)
    assert timm.patch_embed.proj.bias is not None and clip.patch_embed.proj.bias is None
    assert type(clip.blocks[0].mlp.act).__name__ == "QuickGELU"
    assert isinstance(timm.blocks[0].mlp.act, nn.GELU)
    assert clip.norm.eps == 1e-5 and timm.norm.eps == 1e-6
    x = torch.linspace(-4, 4, 9)
    torch.testing.assert_close(clip.blocks[0].mlp.act(x), x * torch.sigmoid(1.702 * x))


def test_vit_b16_and_factory_on_meta():
    with torch.device("meta"):
        net = build_backbone("vit_b16", image_size=(256, 128))
        clip = vit_b16(style="clip", patch_stride=12)
        y = net(torch.empty(2, 3, 256, 128))
    assert net.grid == (16, 8) and net.out_channels == 768 and y.shape == (2, 768)
    assert sum(p.numel() for p in net.parameters()) == 85_746_432     # ViT-B/16 without head
    assert clip.grid == (21, 10) and clip.proj.weight.shape == (512, 768)
    assert len(net.stage_names) == 12 and net.get_submodule("blocks.11") is net.blocks[11]
    with torch.device("meta"):
        proj = build_backbone("vit_b16", last_channel=256, width=0.25, ibn=True)
    assert proj.out_channels == 256


def test_dynamic_size_resizes_pos_embed_on_the_fly():
    net = vit_tiny().eval()
    x = torch.randn(1, 3, 128, 64)
    with torch.no_grad():
        out = net(x)
        pos = resize_pos_embed(net.pos_embed, (8, 4), old_grid=(16, 8))
        fixed = VisionTransformer(image_size=(128, 64), dim=192, depth=4, heads=3).eval()
        fixed.load_state_dict({**net.state_dict(), "pos_embed": pos})
        torch.testing.assert_close(out, fixed(x))
    strict = VisionTransformer(dynamic_size=False, **SMALL)
    with pytest.raises(ValueError, match="x: expected \\(H, W\\) = \\(256, 128\\)"):
        strict(x)


def test_ddan_style_split_encoder_then_mapping():
    """E = all blocks but the last, M = last block + final norm + [CLS] (a DDAN split)."""
    net = VisionTransformer(**SMALL).eval()
    x = torch.randn(2, 3, 256, 128)
    with torch.no_grad():
        full = net(x)
        last = net.blocks[-1]
        mapping = nn.Sequential(last, net.norm, net.pool)
        replace_stage(net, net.stage_names[-1], lambda old: nn.Identity())
        torch.testing.assert_close(mapping(net.forward_tokens(x)), full)


def test_drop_path_only_in_training_and_grads_reach_every_parameter():
    net = VisionTransformer(drop_path=0.5, **SMALL)
    assert [b.drop_path for b in net.blocks] == [0.0, 0.5]
    x = torch.randn(4, 3, 256, 128)
    net.eval()
    torch.testing.assert_close(net(x), net(x))
    net.train()
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_finite(dtype):
    net = VisionTransformer(**SMALL).to(dtype).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 256, 128, dtype=dtype))
    assert out.dtype == dtype and torch.isfinite(out).all()


def test_tiny_vit_trains():
    """From scratch a ViT wants a small learning rate: at 1e-3 this one stalls near log 4."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    protos = torch.rand(4, 3, 64, 32, generator=g)
    y = torch.arange(4).repeat_interleave(4)
    net = VisionTransformer(image_size=(64, 32), dim=64, depth=2, heads=4)
    head = nn.Linear(net.out_channels, 4)
    opt = torch.optim.AdamW([*net.parameters(), *head.parameters()], lr=3e-4)
    losses = []
    for _ in range(25):
        x = protos[y] + 0.2 * torch.randn(len(y), 3, 64, 32, generator=g)
        loss = F.cross_entropy(head(net(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < 0.25 * sum(losses[:3]) / 3, losses


@given(seed=seeds, old=grids, new=grids, k=st.integers(0, 2))
def test_resize_keeps_prefix_rows_and_shape(seed, old, new, k):
    pos = torch.randn(1, k + old[0] * old[1], 5, generator=torch.Generator().manual_seed(seed))
    out = resize_pos_embed(pos, new, old_grid=old, num_prefix_tokens=k)
    assert out.shape == (1, k + new[0] * new[1], 5)
    assert torch.equal(out[:, :k], pos[:, :k])


@given(seed=seeds, grid=grids, k=st.integers(0, 2))
def test_resize_is_identity_on_the_same_grid(seed, grid, k):
    pos = torch.randn(1, k + grid[0] * grid[1], 4, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(resize_pos_embed(pos, grid, num_prefix_tokens=k), pos)
    assert torch.equal(resize_pos_embed(pos, grid, old_grid=grid, num_prefix_tokens=k), pos)


@given(seed=seeds, old=grids, new=grids, a=st.floats(-3, 3), c=st.floats(-5, 5),
       mode=st.sampled_from(["bicubic", "bilinear"]))
def test_resize_is_linear_and_keeps_constants(seed, old, new, a, c, mode):
    g = torch.Generator().manual_seed(seed)
    p, q = (torch.randn(1, 1 + old[0] * old[1], 3, generator=g, dtype=torch.float64)
            for _ in range(2))

    def r(t):
        return resize_pos_embed(t, new, old_grid=old, interpolation=mode).double()

    torch.testing.assert_close(r(a * p + q), a * r(p) + r(q), rtol=1e-4, atol=1e-4)
    const = torch.full_like(p, c)
    torch.testing.assert_close(r(const), torch.full((1, 1 + new[0] * new[1], 3), c,
                                                    dtype=torch.float64), rtol=1e-5, atol=1e-5)


def test_resize_square_default_and_dtype():
    pos = torch.randn(1, 1 + 14 * 14, 8).half()
    out = resize_pos_embed(pos, (16, 8))
    assert out.dtype == torch.float16 and out.shape == (1, 129, 8)
    with pytest.raises(ValueError, match="pos_embed: .*pass old_grid"):
        resize_pos_embed(torch.randn(1, 1 + 6, 8), (4, 4))


@pytest.mark.slow
def test_vit_b16_cpu_forward_at_256x128():
    torch.set_num_threads(1)
    net = vit_b16(patch_stride=12).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 256, 128)).shape == (1, 768)
