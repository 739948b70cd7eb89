"""Insert a block after, or in place of, any stage of a backbone (CDVM's global-local blocks).

Every dgblocks backbone lists its replaceable stages in ``stage_names`` (dotted paths:
``"layer3"`` for ResNet, ``"features.7"`` for MobileNetV2). Call
:func:`dgblocks.backbones.load_pretrained` *before* inserting blocks: a wrapped stage's
parameters move under ``<stage>.0.`` (``insert_after``) or wherever the new module keeps them.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

__all__ = ["named_stages", "replace_stage", "insert_after"]


def named_stages(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The ``(name, module)`` of every stage listed in ``model.stage_names``.

    Example:
        >>> from dgblocks.backbones import ResNet
        >>> " ".join(n for n, _ in named_stages(ResNet(layers=(1, 1, 1, 1), base_width=8)))
        'layer1 layer2 layer3 layer4'
    """
    names = getattr(model, "stage_names", None)
    if names is None:
        raise ValueError(f"model: expected a backbone with stage_names, got {type(model).__name__}")
    return [(n, model.get_submodule(n)) for n in names]


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    if child.isdigit():
        parent[int(child)] = module
    else:
        setattr(parent, child, module)


def replace_stage(model: nn.Module, name: str,
                  make: Callable[[nn.Module], nn.Module]) -> nn.Module:
    """Replace stage ``name`` by ``make(old_stage)``; return the new module.

    ``make`` receives the old stage so it can reuse or copy it (a global-local block builds
    its branches from the stage it wraps).

    Example:
        >>> from dgblocks.backbones import ResNet
        >>> net = ResNet(layers=(1, 1, 1, 1), base_width=8)
        >>> _ = replace_stage(net, "layer4", lambda old: nn.Identity())
        >>> net(torch.zeros(1, 3, 64, 32)).shape
        torch.Size([1, 128])
    """
    named_stages(model)  # a model without stage_names raises, naming ``model``
    names = model.stage_names
    if name not in names:
        raise ValueError(f"name: expected one of {tuple(names)}, got {name!r}")
    if not callable(make):
        raise ValueError(f"make: expected a callable old_stage -> nn.Module, got "
                         f"{type(make).__name__}")
    new = make(model.get_submodule(name))
    if not isinstance(new, nn.Module):
        raise ValueError(f"make: expected it to return an nn.Module, got {type(new).__name__}")
    _set(model, name, new)
    return new


def insert_after(model: nn.Module, name: str, block: nn.Module) -> nn.Sequential:
    """Run ``block`` on the output of stage ``name`` (the stage becomes ``Sequential(old, block)``).

    Example:
        >>> from dgblocks.backbones import ResNet
        >>> net = ResNet(layers=(1, 1, 1, 1), base_width=8)
        >>> _ = insert_after(net, "layer2", nn.Dropout2d(0.1))
        >>> net(torch.zeros(1, 3, 64, 32)).shape
        torch.Size([1, 256])
    """
    if not isinstance(block, nn.Module):
        raise ValueError(f"block: expected an nn.Module, got {type(block).__name__}")
    return replace_stage(model, name, lambda old: nn.Sequential(old, block))
