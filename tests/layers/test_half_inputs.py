"""Blocks with parameters and a half-precision input (issue 27): a float32 block fed an fp16 or
bf16 tensor names the argument and both dtypes (torch's own "mat1 and mat2 must have the same
dtype" came from deep inside before); the block converted to that dtype computes, and so does
the float32 block under ``torch.autocast``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from dgblocks import DGBlocksError
from dgblocks import layers as Y

N, D = 6, 8
G = torch.arange(N) % 2


def _blocks() -> dict[str, tuple[Callable[[], nn.Module], Callable[[torch.dtype], tuple], str]]:
    def x(*shape: int) -> Callable[[torch.dtype], tuple]:
        return lambda dt: (torch.randn(*shape).to(dt),)

    return {
        "BNNeck": (lambda: Y.BNNeck(dim=D, num_classes=3), x(N, D), "x"),
        "CentralDomainDiscriminator": (lambda: Y.CentralDomainDiscriminator(in_dim=D), x(N, D),
                                       "x"),
        "NuisanceHeads": (lambda: Y.NuisanceHeads(in_dim=D, sizes=[2, 3]), x(N, D), "x"),
        "SubspaceHypernet": (lambda: Y.SubspaceHypernet(channels=D), x(N, D, 3, 3), "x"),
        "StyleFusion": (lambda: Y.StyleFusion(channels=D),
                        lambda dt: (torch.randn(N, D, 3, 3).to(dt),) * 2, "f_inv"),
        "DisentangledEncoders": (lambda: Y.DisentangledEncoders(
            encoder_s=nn.Linear(D, 4), encoder_v=nn.Linear(D, 4), dim=4, num_ids=3,
            num_domains=2), x(N, D), "x"),
        "GlobalLocalBlock": (lambda: Y.GlobalLocalBlock(make_block=lambda: nn.Linear(D, 3),
                                                        num_domains=2),
                             lambda dt: (torch.randn(N, D).to(dt), G), "x"),
    }


BLOCKS = _blocks()
HALF = [torch.float16, torch.bfloat16]


def _finite(out: Any) -> bool:
    if isinstance(out, torch.Tensor):
        return bool(torch.isfinite(out.float()).all())
    values = out.values() if isinstance(out, dict) else out
    return all(_finite(o) for o in values)


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("name", BLOCKS)
def test_half_input_to_a_float32_block_names_the_argument(name, dtype):
    make, inputs, arg = BLOCKS[name]
    with pytest.raises(DGBlocksError, match=rf"^{arg}: expected dtype torch.float32 .* got"
                                            rf" {dtype}"):
        make()(*inputs(dtype))


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("name", BLOCKS)
def test_block_converted_to_the_half_dtype_computes(name, dtype):
    make, inputs, _ = BLOCKS[name]
    assert _finite(make().to(dtype)(*inputs(dtype)))


@pytest.mark.parametrize("name", BLOCKS)
def test_float32_block_computes_under_autocast(name):
    make, inputs, _ = BLOCKS[name]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert _finite(make()(*inputs(torch.bfloat16)))


@pytest.mark.parametrize("name", BLOCKS)
def test_input_on_another_device_names_the_argument(name):
    make, inputs, arg = BLOCKS[name]
    moved = tuple(t.to("meta") if t.is_floating_point() else t for t in inputs(torch.float32))
    with pytest.raises(DGBlocksError, match=rf"^{arg}: expected device cpu"):
        make()(*moved)


@pytest.mark.parametrize("make", [lambda: Y.CentralDomainDiscriminator(in_dim=D),
                                  lambda: Y.NuisanceHeads(in_dim=D, sizes=[2])])
def test_heads_need_two_samples_in_training_only(make):
    head = make()
    with pytest.raises(DGBlocksError, match=r"^x: expected B >= 2 in training mode"):
        head(torch.randn(1, D))  # torch's batch norm raised a plain ValueError before
    assert _finite(head.eval()(torch.randn(1, D)))
