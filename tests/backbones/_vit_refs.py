"""Reference ViTs with the real checkpoint key layouts, written independently of dgblocks.

``RefCLIP``: OpenAI CLIP's full model (visual tower + text tower keys, as in ``clip/model.py``:
``VisionTransformer`` with ``conv1``, ``class_embedding``, ``positional_embedding``, ``ln_pre``,
``transformer.resblocks`` of ``nn.MultiheadAttention`` + ``ln_1`` + ``mlp.c_fc/c_proj`` +
``ln_2``, ``ln_post``, ``proj``). ``RefTimmViT``: timm's ``VisionTransformer`` key layout
(``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``blocks.i.{norm1, attn.qkv, attn.proj,
norm2, mlp.fc1, mlp.fc2}``, ``norm``, ``head``), attention written out with softmax.
"""

from collections import OrderedDict

import torch
from torch import nn


class QuickGELURef(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class RefResBlock(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, h)
        self.ln_1 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(d, 4 * d)),
                                              ("gelu", QuickGELURef()),
                                              ("c_proj", nn.Linear(4 * d, d))]))
        self.ln_2 = nn.LayerNorm(d)

    def forward(self, x):  # (L, N, D), CLIP's sequence-first layout
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class RefTransformer(nn.Module):
    def __init__(self, d, layers, h):
        super().__init__()
        self.resblocks = nn.Sequential(*[RefResBlock(d, h) for _ in range(layers)])


class RefCLIPVisual(nn.Module):
    def __init__(self, res, patch, width, layers, heads, out):
        super().__init__()
        scale = width ** -0.5
        self.conv1 = nn.Conv2d(3, width, patch, patch, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((res // patch) ** 2 + 1,
                                                                     width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = RefTransformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, out))

    def forward(self, x):
        x = self.conv1(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = self.class_embedding + torch.zeros(x.shape[0], 1, x.shape[-1])
        x = torch.cat([cls, x], dim=1) + self.positional_embedding
        x = self.ln_pre(x).permute(1, 0, 2)
        x = self.transformer.resblocks(x).permute(1, 0, 2)
        f = self.ln_post(x[:, 0])
        return f, f @ self.proj


class RefCLIP(nn.Module):
    """Full CLIP: the text tower's keys must be ignored by the loader."""

    def __init__(self, res=224, patch=16, width=32, layers=2, heads=4, out=16, text_width=16,
                 text_layers=1, vocab=50, context=7):
        super().__init__()
        self.visual = RefCLIPVisual(res, patch, width, layers, heads, out)
        self.token_embedding = nn.Embedding(vocab, text_width)
        self.positional_embedding = nn.Parameter(torch.randn(context, text_width))
        self.transformer = RefTransformer(text_width, text_layers, 2)
        self.ln_final = nn.LayerNorm(text_width)
        self.text_projection = nn.Parameter(torch.randn(text_width, out))
        self.logit_scale = nn.Parameter(torch.ones([]))

    def full_state_dict(self):
        sd = dict(self.state_dict())  # + the scalar entries of OpenAI's TorchScript archives
        sd.update(input_resolution=torch.tensor(224), context_length=torch.tensor(77),
                  vocab_size=torch.tensor(49408))
        return sd


class RefTimmAttention(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h = h
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        a = (q @ k.transpose(-2, -1) * (d // self.h) ** -0.5).softmax(-1)
        return self.proj((a @ v).transpose(1, 2).reshape(b, n, d))


class RefTimmMlp(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class RefTimmBlock(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(d, eps=1e-6), RefTimmAttention(d, h)
        self.norm2, self.mlp = nn.LayerNorm(d, eps=1e-6), RefTimmMlp(d)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class RefTimmViT(nn.Module):
    def __init__(self, res=224, patch=16, width=32, layers=2, heads=4, classes=10):
        super().__init__()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, width, patch, patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, (res // patch) ** 2 + 1, width) * 0.02)
        self.blocks = nn.Sequential(*[RefTimmBlock(width, heads) for _ in range(layers)])
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return self.norm(self.blocks(x))[:, 0]


def randomise(module, seed=0):
    """Every floating tensor redrawn (LayerNorms and biases too), so a mis-mapped key shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in module.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=g) * 0.1 + (1.0 if t.dim() == 1 else 0.0))
    return module
