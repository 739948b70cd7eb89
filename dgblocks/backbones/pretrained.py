"""Load user-supplied torchvision-, timm- or CLIP-named weights into dgblocks backbones.

Nothing is downloaded: the caller passes a state dict (``torch.load(path, weights_only=True)``)
or the path itself. dgblocks CNNs use torchvision's names (and IBN-Net's for IBN-a), its ViT
timm's; timm's MobileNetV2 names (``conv_stem``, ``blocks.s.j.conv_pw``, ...) and OpenAI CLIP's
visual tower (``visual.conv1``, ``visual.transformer.resblocks.i...``) are renamed, wrapper
prefixes (``module.``, ``model.``) are stripped, a model that holds the backbone under a prefix
(``DualBranch.backbone``) is matched by finding that prefix, and a ViT position embedding laid
out for another grid (14 x 14 at 224 x 224) is resized to the model's (bicubic, [CLS] kept).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from dgblocks._checks import ShapeError, ValueRangeError
from dgblocks.backbones.vit import VisionTransformer
from dgblocks.backbones.vit_weights import from_clip, resize_pos_embed

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
    (``missing``), source keys not used (``unexpected``), source keys whose shapes disagree
    (``mismatched``) and model keys loaded after resizing (``resized``: ViT position
    embeddings)."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    resized: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        def head(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (f", ... ({len(keys)})" if len(keys) > 5 else "")
        return (f"loaded {len(self.loaded)} tensors; missing: [{head(self.missing)}]; "
                f"unexpected: [{head(self.unexpected)}]; shape mismatch: "
                f"[{head(self.mismatched)}]"
                + (f"; resized: [{head(self.resized)}]" if self.resized else ""))


def timm_to_torchvision(key: str) -> str:
    """Rename one timm MobileNetV2 key to torchvision's name (other keys pass unchanged).

    Example:
        >>> timm_to_torchvision("blocks.1.0.conv_dw.weight")
        'features.2.conv.1.0.weight'
    """
    if not isinstance(key, str):
        raise ValueRangeError(f"key: expected a str, got {type(key).__name__}")
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


def _read(state_dict: object) -> tuple[Mapping, str]:
    """The mapping to load and how to name it in errors (``state_dict`` or the file)."""
    if isinstance(state_dict, Mapping):
        return state_dict, "state_dict"
    if not isinstance(state_dict, (str, os.PathLike)):
        raise ValueRangeError("state_dict: expected a mapping of names to tensors or a file path,"
                              f" got {type(state_dict).__name__}")
    path = os.fspath(state_dict)
    where = f"state_dict (file {path!r})"
    if not os.path.isfile(path):
        raise ValueRangeError(f"{where}: no such file")
    with warnings.catch_warnings():  # torch warns before refusing a TorchScript archive
        warnings.filterwarnings("ignore", message=".*TorchScript")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except RuntimeError as e:
            if "TorchScript" not in str(e):
                raise ValueRangeError(f"{where}: not a torch checkpoint ({e})") from e
            obj = torch.jit.load(path, map_location="cpu").state_dict()  # OpenAI CLIP's .pt
        except Exception as e:  # unpickling errors share no narrower base class
            raise ValueRangeError(f"{where}: not a torch checkpoint ({type(e).__name__}: "
                                  f"{e})") from e
    if not isinstance(obj, Mapping):
        raise ValueRangeError(f"{where}: expected a state dict, the file holds a "
                              f"{type(obj).__name__}")
    return obj, where


def _unwrap(state: Mapping[str, object]) -> dict[str, Tensor]:
    for nested in ("state_dict", "model", "model_state"):
        inner = state.get(nested)
        if isinstance(inner, Mapping) and inner and all(isinstance(k, str) for k in inner):
            state = inner
            break
    out = {}
    for k, v in state.items():
        if not (isinstance(k, str) and isinstance(v, Tensor)):
            continue
        for w in _WRAPPERS:
            if k.startswith(w):
                k = k[len(w):]
        out[k] = v
    return out


def _rename(source: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, str], list[str]]:
    """Source tensors under dgblocks names, the source key of each, and source keys dropped."""
    cls = [k for k in source if k == "class_embedding" or k.endswith(".class_embedding")]
    if cls:  # OpenAI CLIP (full model: ``visual.``; CLIP-ReID: ``image_encoder.``; or bare)
        tensors, origin = from_clip(source, prefix=cls[0][: -len("class_embedding")])
        used = set(origin.values())
        return tensors, origin, [k for k in source if k not in used]
    if any(k.startswith("conv_stem.") or re.match(r"blocks\.\d+\.\d+\.", k) for k in source):
        renamed = {timm_to_torchvision(k): k for k in source}
        return {n: source[k] for n, k in renamed.items()}, renamed, []
    return dict(source), {k: k for k in source}, []


def load_pretrained(model: nn.Module,
                    state_dict: Mapping[str, object] | str | os.PathLike) -> LoadReport:
    """Copy the matching tensors of ``state_dict`` into ``model``; report what did not match.

    Args:
        model: a dgblocks backbone or a module that contains one.
        state_dict: torchvision-, timm-, OpenAI-CLIP- or dgblocks-named tensors (optionally
            nested under ``"state_dict"`` / ``"model"`` and prefixed by ``module.``), or the
            path of a checkpoint file (``torch.load(weights_only=True)``; a TorchScript archive,
            such as OpenAI's ``ViT-B-16.pt``, through ``torch.jit.load``).

    Returns:
        A :class:`LoadReport`. Unused: classifier heads (``fc.*``, ``classifier.*``, timm's
        ``head.*``) and CLIP's text tower, listed under ``unexpected`` (source names). A ViT
        ``pos_embed`` for another grid is resized by ``resize_pos_embed`` (``resized``).

    Raises:
        ValueRangeError: ``model`` is not a module; ``state_dict`` is neither a mapping nor a
            readable checkpoint; no floating-point tensor of it fits the model (an unrelated
            file would otherwise leave the model untrained); a CLIP-style checkpoint for a
            timm-style ViT or the reverse (the activations would silently differ).

    Example:
        >>> from dgblocks.backbones import MobileNetV2
        >>> a, b = MobileNetV2(width_mult=0.25), MobileNetV2(width_mult=0.25)
        >>> report = load_pretrained(b, a.state_dict())
        >>> report.missing, report.unexpected
        ([], [])
    """
    if not isinstance(model, nn.Module):
        raise ValueRangeError(f"model: expected an nn.Module, got {type(model).__name__}")
    state, where = _read(state_dict)
    raw = _unwrap(state)
    if not raw:
        raise ValueRangeError(f"{where}: expected names mapped to tensors, found no tensor")
    source, origin, dropped = _rename(raw)
    target = model.state_dict()
    if not target:
        raise ValueRangeError(f"model: {type(model).__name__} has no parameters to load")
    prefix = _find_prefix(list(target), list(source))
    _check_vit_style(model, target, prefix + "pos_embed", source, where)
    report, merged = LoadReport(unexpected=list(dropped)), {}
    for k, v in source.items():
        name = prefix + k
        if name not in target:
            report.unexpected.append(origin[k])
            continue
        if target[name].shape != v.shape and name.rpartition(".")[2] == "pos_embed":
            v = _resized(model, name, v, target[name])
            if v is not None:
                report.resized.append(name)
        if v is None or target[name].shape != v.shape:
            report.mismatched.append(origin[k])
            continue
        merged[name] = v.to(dtype=target[name].dtype)
        report.loaded.append(name)
    if not any(target[n].is_floating_point() for n in report.loaded):
        raise ValueRangeError(
            f"{where}: no floating-point tensor fits {type(model).__name__} (source keys "
            f"{_head(list(raw))}; model keys {_head(list(target))}; "
            f"{len(report.mismatched)} same-name tensors of another shape): the wrong file or "
            "the wrong backbone?")
    used = set(report.loaded)
    report.missing = [k for k in target if k not in used]
    with torch.no_grad():
        model.load_state_dict(merged, strict=False)
    return report


def _head(keys: list[str]) -> str:
    return "[" + ", ".join(keys[:3]) + (", ...]" if len(keys) > 3 else "]")


def _owner(model: nn.Module, name: str) -> nn.Module:
    parent = name.rpartition(".")[0]
    return model.get_submodule(parent) if parent else model


def _resized(model: nn.Module, name: str, v: Tensor, like: Tensor) -> Tensor | None:
    """``v`` resized to the grid of the ViT that owns ``name``; ``None`` if it cannot be."""
    grid = getattr(_owner(model, name), "grid", None)
    if grid is None or v.dim() != 3 or v.shape[2] != like.shape[2]:
        return None
    try:
        return resize_pos_embed(v, tuple(grid))
    except ShapeError:
        return None


def _check_vit_style(model: nn.Module, target: dict[str, Tensor], pos: str,
                     source: dict[str, Tensor], where: str) -> None:
    if "pos_embed" not in source or pos not in target:
        return
    vit = _owner(model, pos)
    style = "clip" if "norm_pre.weight" in source else "timm"
    if isinstance(vit, VisionTransformer) and vit.style != style:
        raise ValueRangeError(
            f"model: a style={vit.style!r} ViT, but {where} holds a {style}-style ViT "
            f"({'with' if style == 'clip' else 'without'} norm_pre / ln_pre): build the model "
            f"with style={style!r} so that the activation and norms match the weights")


def _find_prefix(target: list[str], source: list[str]) -> str:
    """The prefix p maximising how many source keys exist in the model as ``p + key``."""
    tset = set(target)
    candidates = {""}
    for probe in source[:3]:
        candidates |= {t[: len(t) - len(probe)] for t in target
                       if t.endswith("." + probe)}
    return max(sorted(candidates), key=lambda p: sum(p + k in tset for k in source))
