"""Load user-supplied torchvision- or timm-named weights into dgblocks backbones.

Nothing is downloaded: the caller passes a state dict (``torch.load(path, weights_only=True)``).
dgblocks backbones already use torchvision's names (and IBN-Net's for IBN-a); timm's
MobileNetV2 names (``conv_stem``, ``blocks.s.j.conv_pw``, ...) are renamed, wrapper prefixes
(``module.``, ``model.``) are stripped, and a model that holds the backbone under a prefix
(``DualBranch.backbone``) is matched by finding that prefix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

__all__ = ["LoadReport", "load_pretrained", "timm_to_torchvision"]

_WRAPPERS = ("module.", "model.", "_orig_mod.")
# first flat index in torchvision's ``features`` of each timm MobileNetV2 stage
_MBV2_OFFSETS = (1, 2, 4, 7, 11, 14, 17)
_MBV2_DS = {"conv_dw": "conv.0.0", "bn1": "conv.0.1", "conv_pw": "conv.1", "bn2": "conv.2"}
_MBV2_IR = {"conv_pw": "conv.0.0", "bn1": "conv.0.1", "conv_dw": "conv.1.0", "bn2": "conv.1.1",
            "conv_pwl": "conv.2", "bn3": "conv.3"}


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did: model keys loaded, model keys left as they were
    (``missing``), source keys not used (``unexpected``) and keys whose shapes disagree."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        def head(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (f", ... ({len(keys)})" if len(keys) > 5 else "")
        return (f"loaded {len(self.loaded)} tensors; missing: [{head(self.missing)}]; "
                f"unexpected: [{head(self.unexpected)}]; shape mismatch: "
                f"[{head(self.mismatched)}]")


def timm_to_torchvision(key: str) -> str:
    """Rename one timm MobileNetV2 key to torchvision's name (other keys pass unchanged).

    Example:
        >>> timm_to_torchvision("blocks.1.0.conv_dw.weight")
        'features.2.conv.1.0.weight'
    """
    m = re.fullmatch(r"blocks\.(\d+)\.(\d+)\.([a-z_0-9]+)\.(.+)", key)
    if m:
        s, j, part, rest = int(m[1]), int(m[2]), m[3], m[4]
        table = _MBV2_DS if s == 0 else _MBV2_IR
        if s < len(_MBV2_OFFSETS) and part in table:
            return f"features.{_MBV2_OFFSETS[s] + j}.{table[part]}.{rest}"
        return key
    for old, new in (("conv_stem.", "features.0.0."), ("bn1.", "features.0.1."),
                     ("conv_head.", "features.18.0."), ("bn2.", "features.18.1."),
                     ("classifier.", "classifier.1.")):
        if key.startswith(old):
            return new + key[len(old):]
    return key


def _unwrap(state: Mapping[str, object]) -> dict[str, Tensor]:
    for nested in ("state_dict", "model", "model_state"):
        inner = state.get(nested)
        if isinstance(inner, Mapping) and inner and all(isinstance(k, str) for k in inner):
            state = inner
            break
    out = {}
    for k, v in state.items():
        if not isinstance(v, Tensor):
            continue
        for w in _WRAPPERS:
            if k.startswith(w):
                k = k[len(w):]
        out[k] = v
    return out


def load_pretrained(model: nn.Module, state_dict: Mapping[str, object]) -> LoadReport:
    """Copy the matching tensors of ``state_dict`` into ``model``; report what did not match.

    Args:
        model: a dgblocks backbone or a module that contains one.
        state_dict: torchvision-, timm- or dgblocks-named tensors (optionally nested under
            ``"state_dict"`` / ``"model"`` and prefixed by ``module.``).

    Returns:
        A :class:`LoadReport`; a classifier head (``fc.*``, ``classifier.*``) that the
        feature extractor does not have shows up under ``unexpected``.

    Example:
        >>> from dgblocks.backbones import MobileNetV2
        >>> a, b = MobileNetV2(width_mult=0.25), MobileNetV2(width_mult=0.25)
        >>> report = load_pretrained(b, a.state_dict())
        >>> report.missing, report.unexpected
        ([], [])
    """
    source = _unwrap(state_dict)
    if any(k.startswith(("conv_stem.", "blocks.")) for k in source):
        source = {timm_to_torchvision(k): v for k, v in source.items()}
    target = model.state_dict()
    prefix = _find_prefix(list(target), list(source))
    report, merged = LoadReport(), {}
    used = set()
    for k, v in source.items():
        name = prefix + k
        if name not in target:
            report.unexpected.append(k)
        elif target[name].shape != v.shape:
            report.mismatched.append(k)
        else:
            merged[name] = v.to(dtype=target[name].dtype)
            report.loaded.append(name)
            used.add(name)
    report.missing = [k for k in target if k not in used]
    with torch.no_grad():
        model.load_state_dict(merged, strict=False)
    return report


def _find_prefix(target: list[str], source: list[str]) -> str:
    """The prefix p maximising how many source keys exist in the model as ``p + key``."""
    tset = set(target)
    candidates = {""}
    for probe in source[:3]:
        candidates |= {t[: len(t) - len(probe)] for t in target
                       if t.endswith("." + probe)}
    return max(sorted(candidates), key=lambda p: sum(p + k in tset for k in source))
