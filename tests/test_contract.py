"""Walks every public name of dgblocks and checks the library conventions (docs/conventions.md).

- every pure function in ``dgblocks.functional`` has a docstring with an equation (``$``),
  ``Shape:``, ``Invariants:`` and an ``Example:`` (doctest);
- every public ``nn.Module`` has ``Shape:`` and ``Example:``, a keyword-only constructor, overrides
  ``forward`` (never ``__call__``), gives ``extra_repr`` when it has configuration, and declares
  ``functional_name``: the name of its pure twin in ``dgblocks.functional`` (or ``None`` for a
  layer whose state *is* the block, such as a pool of running means);
- every public ``nn.Module`` of losses, layers, memory, sampling, domains and meta has a
  ``forward`` docstring of its own (not torch's generic text) with ``Returns:`` and, when it
  takes arguments, ``Args:`` naming each of them.
"""

import importlib
import inspect

import pytest
from torch import nn

import dgblocks.functional as DF

MODULE_PACKAGES = ["dgblocks.losses", "dgblocks.layers", "dgblocks.sampling", "dgblocks.memory"]
FORWARD_PACKAGES = MODULE_PACKAGES + ["dgblocks.domains", "dgblocks.meta"]


def _public_modules(packages=MODULE_PACKAGES):
    out = []
    for pkg_name in packages:
        pkg = importlib.import_module(pkg_name)
        for name in getattr(pkg, "__all__", []):
            obj = getattr(pkg, name)
            if inspect.isclass(obj) and issubclass(obj, nn.Module):
                out.append(pytest.param(obj, id=f"{pkg_name}.{name}"))
    return out


def _public_functions():
    return [pytest.param(getattr(DF, n), id=n) for n in DF.__all__]


def test_functional_all_resolves():
    assert len(DF.__all__) == len(set(DF.__all__))
    for name in DF.__all__:
        assert callable(getattr(DF, name)), name


def test_package_all_resolves():
    for pkg_name in MODULE_PACKAGES + ["dgblocks.domains"]:
        pkg = importlib.import_module(pkg_name)
        for name in getattr(pkg, "__all__", []):
            assert hasattr(pkg, name), f"{pkg_name}.{name}"


@pytest.mark.parametrize("fn", _public_functions())
def test_function_docstring(fn):
    doc = inspect.getdoc(fn) or ""
    for section in ("Shape:", "Example:"):
        assert section in doc, f"{fn.__name__}: docstring lacks {section}"
    assert "$" in doc, f"{fn.__name__}: docstring lacks the equation"
    assert "Invariants:" in doc, f"{fn.__name__}: docstring lacks Invariants:"
    assert ">>>" in doc, f"{fn.__name__}: example is not a doctest"


@pytest.mark.parametrize("cls", _public_modules())
def test_module_conventions(cls):
    doc = inspect.getdoc(cls) or ""
    assert "Shape:" in doc, f"{cls.__name__}: docstring lacks Shape:"
    assert ">>>" in doc, f"{cls.__name__}: docstring lacks a doctest example"
    assert "__call__" not in cls.__dict__, f"{cls.__name__} overrides __call__"
    assert "forward" in cls.__dict__ or any(
        "forward" in b.__dict__ for b in cls.__mro__[1:] if b is not nn.Module
    ), f"{cls.__name__} does not define forward"
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert not positional, f"{cls.__name__}: constructor arguments must be keyword-only: {positional}"
    if params:
        assert cls.extra_repr is not nn.Module.extra_repr, f"{cls.__name__}: no extra_repr"
    assert "functional_name" in dir(cls), f"{cls.__name__}: declare functional_name"
    twin = cls.functional_name
    if twin is not None:
        assert twin in DF.__all__, f"{cls.__name__}: pure twin {twin!r} missing from dgblocks.functional"


def _own_forward(cls):
    for base in cls.__mro__:
        if base is nn.Module:
            return None
        if "forward" in base.__dict__:
            return base.__dict__["forward"]
    return None


@pytest.mark.parametrize("cls", _public_modules(FORWARD_PACKAGES))
def test_forward_has_its_own_docstring(cls):
    forward = _own_forward(cls)
    assert forward is not None, f"{cls.__name__} does not define forward"
    doc = inspect.getdoc(forward) or ""  # the function's own __doc__: getdoc of the
    assert forward.__doc__, f"{cls.__name__}.forward has no docstring of its own"  # method
    assert "Returns:" in doc, f"{cls.__name__}.forward: docstring lacks Returns:"
    args = [n for n in inspect.signature(forward).parameters if n != "self"]
    if args:
        assert "Args:" in doc, f"{cls.__name__}.forward: docstring lacks Args:"
        missing = [n for n in args if f"{n}:" not in doc]
        assert not missing, f"{cls.__name__}.forward: Args: does not describe {missing}"


def test_forward_docstring_check_catches_torchs_generic_text():
    class Bare(nn.Module):
        def forward(self, x):
            return x

    assert _own_forward(Bare).__doc__ is None
    assert "Define the computation" in (inspect.getdoc(nn.Module.forward) or "")
