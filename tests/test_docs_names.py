"""Every dotted name the docs cite in backticks resolves to a real object.

Scanned: ``README.md``, ``benchmarks/README.md`` and ``docs/**/*.md`` (fenced code blocks
excluded). A name is checked when it starts with ``dgblocks.``, with ``DF.`` (the docs'
short form of ``dgblocks.functional``), or with the name of a top-level subpackage or module
of dgblocks (``losses.NegEntropy`` -> ``dgblocks.losses.NegEntropy``). It resolves when the
longest importable module prefix imports and getattr finds the rest (a dataclass field or a
class annotation counts as an attribute).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import dgblocks

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted([ROOT / "README.md", ROOT / "benchmarks" / "README.md",
                *(ROOT / "docs").rglob("*.md")])
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
FILE_SUFFIXES = {"py", "md", "json", "jsonl", "txt", "png", "yml", "yaml", "toml", "pt", "csv",
                 "onnx", "log", "sh", "html"}
SHORT = {"DF": "dgblocks.functional"}
SUBMODULES = {m.name for m in pkgutil.iter_modules(dgblocks.__path__)}


def _full_name(name: str) -> str | None:
    head, _, rest = name.partition(".")
    if head == "dgblocks":
        return name
    if head in SHORT:
        return f"{SHORT[head]}.{rest}"
    if head in SUBMODULES:
        return f"dgblocks.{name}"
    return None


def cited_names() -> list[tuple[str, str, str]]:
    """``(file, name as written, full dotted name)`` for every checked span."""
    out = []
    for path in FILES:
        if not path.exists():
            continue
        text = FENCE.sub("", path.read_text())
        for span in SPAN.findall(text):
            m = NAME.match(span.strip())
            if m is None:
                continue
            name = m.group(0)
            if name.rsplit(".", 1)[1] in FILE_SUFFIXES:  # a file name: data.md, meta.py
                continue
            full = _full_name(name)
            if full is not None:
                out.append((str(path.relative_to(ROOT)), name, full))
    return sorted(set(out))


def _has_attr(obj: object, attr: str) -> bool:
    if hasattr(obj, attr):
        return True
    if dataclasses.is_dataclass(obj) and attr in {f.name for f in dataclasses.fields(obj)}:
        return True
    return isinstance(obj, type) and any(attr in getattr(c, "__annotations__", {})
                                         for c in obj.__mro__)


def resolve(full: str) -> object:
    """Import the longest importable prefix of ``full``, then getattr the rest."""
    parts = full.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not _has_attr(obj, attr):
                raise AttributeError(f"{'.'.join(parts[:i])} has no {attr!r} (in {full})")
            obj = getattr(obj, attr, None)
        return obj
    raise ImportError(full)


NAMES = cited_names()


def test_the_docs_cite_names():
    assert len(NAMES) > 20  # the scanner finds the docs' names at all


@pytest.mark.parametrize(("where", "name", "full"), NAMES,
                         ids=[f"{w}:{n}" for w, n, _ in NAMES])
def test_cited_name_resolves(where, name, full):
    try:
        resolve(full)
    except (ImportError, AttributeError) as e:
        pytest.fail(f"{where}: `{name}` does not resolve ({e})")
