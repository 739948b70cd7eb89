"""Griffe extension: show dgblocks docstrings in the mkdocs site as a reader expects.

The docstrings are written for ``help()``, doctest and Sphinx-aware readers: cross-references
are Sphinx roles (``:func:`neg_entropy```) and examples are doctest blocks under ``Example:``.
mkdocstrings' Google parser would show the roles as text and the ``>>>`` lines as nested quotes.
When griffe has loaded a package, this rewrites every docstring's text before it is parsed
(the source files are not touched):

- each doctest block (``>>>`` lines with their output, up to a blank line) becomes a fenced
  ``pycon`` code block, prompts kept, ``# doctest:`` flags dropped, ``<BLANKLINE>`` blank;
- a reST literal block (``::`` then an indented block) becomes a fenced ``python`` block;
- an argument item naming several arguments (``domains, labels: ...``) is written once per
  name, as the Google parser matches one name per item to the signature;
- each role becomes a cross-reference to the object's API entry. The target is resolved like a
  name in the docstring's scope (the object, its class, its module's names and imports), then
  by a unique public name anywhere in the package; ``~`` shows only the last component. The
  link is an optional autorefs reference, so a target with no API entry (private, not on any
  page) is shown as inline code and never makes ``mkdocs build --strict`` fail. A target that
  is not in the package at all (``ValueError``, ``torch.nn.BatchNorm1d``) is inline code.

Registered in mkdocs.yml, python handler options:
``extensions: [scripts/griffe_dgblocks.py:DGBlocksDocstrings]``.
``scripts/check_docs_html.py`` checks the built pages for markup that did not render.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from typing import Any

from griffe import Extension, GriffeLoader, Module, NameResolutionError, Object

ROLE = re.compile(r":(?P<role>func|class|meth|mod|attr|data|exc|obj|const|ref|any):"
                  r"`(?P<target>[^`]+)`")
PROMPT = re.compile(r"^(?P<indent>[ \t]*)>>>(?: |$)")
FENCE = re.compile(r"^[ \t]*(?P<mark>```|~~~)")
LITERAL = re.compile(r"^(?P<indent>[ \t]*)(?P<text>.*?)[ \t]*::[ \t]*$")
FLAG = re.compile(r"\s*#\s*doctest:.*$")
TITLED = re.compile(r"^(?P<title>.*?)\s*<(?P<target>[^<>]+)>$", re.S)
ARGS = re.compile(r"^(?P<indent>[ \t]*)(?:Args|Arguments|Parameters|Params|Keyword Args|"
                  r"Keyword Arguments|Other Parameters):[ \t]*$")
GROUPED = re.compile(r"^(?P<indent>[ \t]*)(?P<names>\w+(?:[ \t]*,[ \t]*\w+)+)(?P<rest>[ \t]*"
                     r"(?:\([^)]*\))?:(?:[ \t].*)?)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _doctest_lines(block: list[str]) -> list[str]:
    """A doctest block as shown: flags dropped (and a line left holding only ``...``),
    ``<BLANKLINE>`` shown blank."""
    out = []
    for line in block:
        shown = FLAG.sub("", line)
        if shown != line and shown.strip() == "...":
            continue
        out.append("" if shown.strip() == "<BLANKLINE>" else shown)
    return out


def fence_doctests(text: str) -> str:
    """``text`` with each doctest block wrapped in a fenced ``pycon`` block at its indentation.
    Blocks already inside a fence are left alone."""
    lines, out, i, fence = text.split("\n"), [], 0, None
    while i < len(lines):
        line = lines[i]
        opening = FENCE.match(line)
        if fence is not None or opening:
            if fence is None:
                fence = opening["mark"]
            elif line.strip().startswith(fence):
                fence = None
            out.append(line)
            i += 1
            continue
        prompt = PROMPT.match(line)
        if not prompt:
            out.append(line)
            i += 1
            continue
        indent = prompt["indent"]
        block = []
        while i < len(lines) and lines[i].strip() and _indent(lines[i]) >= len(indent):
            block.append(lines[i][len(indent):])
            i += 1
        if out and out[-1].strip() and _indent(out[-1]) >= len(indent):
            out.append("")  # a fence needs a blank line after a paragraph
        out += [f"{indent}```pycon", *(indent + b if b else "" for b in _doctest_lines(block)),
                f"{indent}```"]
        if i < len(lines) and lines[i].strip():
            out.append("")
    return "\n".join(out)


def fence_literal_blocks(text: str) -> str:
    """``text`` with each reST literal block (a paragraph ending in ``::``, then an indented
    block) as a fenced ``python`` block; the marker becomes ``:`` or, alone, disappears."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        marker = LITERAL.match(lines[i])
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if not marker or j == i + 1 or j == len(lines) or _indent(lines[j]) <= _indent(lines[i]):
            out.append(lines[i])
            i += 1
            continue
        indent, body_indent = marker["indent"], _indent(lines[j])
        if marker["text"]:
            out += [f"{indent}{marker['text']}:", ""]
        end = j
        while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) >= body_indent):
            end += 1
        while not lines[end - 1].strip():
            end -= 1
        out += [f"{indent}```python", *(indent + b[body_indent:] if b.strip() else ""
                                        for b in lines[j:end]), f"{indent}```"]
        i = end
    return "\n".join(out)


def split_grouped_args(text: str) -> str:
    """``text`` with each argument item that names several arguments (``domains, labels: ...``)
    written once per name, so that each is matched to the signature."""
    lines, out, i, section = text.split("\n"), [], 0, None
    while i < len(lines):
        line = lines[i]
        header = ARGS.match(line)
        if header:
            section = len(header["indent"])
        elif line.strip() and section is not None and _indent(line) <= section:
            section = None
        grouped = GROUPED.match(line) if section is not None else None
        if not grouped or _indent(line) <= section:
            out.append(line)
            i += 1
            continue
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() and _indent(lines[i]) > _indent(line):
            body.append(lines[i])
            i += 1
        for name in grouped["names"].split(","):
            out += [f"{grouped['indent']}{name.strip()}{grouped['rest']}", *body]
    return "\n".join(out)


def _outside_fences(text: str, rewrite: Callable[[str], str]) -> str:
    """Apply ``rewrite`` to the parts of ``text`` that are not fenced code."""
    out, chunk, fence = [], [], None
    for line in text.split("\n"):
        if fence is None:
            opening = FENCE.match(line)
            if not opening:
                chunk.append(line)
                continue
            fence = opening["mark"]
            if chunk:
                out.append(rewrite("\n".join(chunk)))
                chunk = []
        elif line.strip().startswith(fence):
            fence = None
        out.append(line)
    if chunk:
        out.append(rewrite("\n".join(chunk)))
    return "\n".join(out)


def rewrite_roles(text: str, resolve: Callable[[str], str | None]) -> str:
    """``text`` with each Sphinx role replaced by an optional autorefs link (``resolve`` maps a
    target to an identifier, or to None when the package has no such object) or inline code."""

    def one(match: re.Match) -> str:
        role, target = match["role"], " ".join(match["target"].split())
        titled = TITLED.match(target)
        title, target = (titled["title"], titled["target"]) if titled else (None, target)
        plain = target.startswith("!")
        target = target.lstrip("!")
        short = target.startswith("~")
        target = target.lstrip("~")
        shown = title or (target.rsplit(".", 1)[-1] if short else target)
        identifier = None if plain or role == "ref" else resolve(target)
        if identifier is None:
            return f"`{shown}`"
        return (f'<autoref identifier="{html.escape(identifier)}" optional>'
                f"<code>{html.escape(shown)}</code></autoref>")

    return _outside_fences(text, lambda chunk: ROLE.sub(one, chunk))


def rewrite_docstring(text: str, resolve: Callable[[str], str | None]) -> str:
    """All the rewrites above, in order; fenced code is left as it is."""
    text = _outside_fences(fence_doctests(text),
                           lambda chunk: split_grouped_args(fence_literal_blocks(chunk)))
    return rewrite_roles(text, resolve)


class _Resolver:
    """Maps a role target written in ``obj``'s docstring to the path of an object of ``pkg``."""

    def __init__(self, pkg: Module) -> None:
        self.pkg = pkg
        self.by_name: dict[str, set[str]] = {}
        for obj in walk(pkg):
            if not obj.name.startswith("_"):
                self.by_name.setdefault(obj.name, set()).add(obj.path)

    def find(self, path: str) -> Object | None:
        """The object at ``path`` in the package (inherited members included), else None."""
        head, _, rest = path.partition(".")
        if head != self.pkg.name:
            return None
        obj: Any = self.pkg
        try:
            for name in rest.split(".") if rest else []:
                members = obj.all_members if obj.is_class else obj.members
                obj = members[name]
            return obj.final_target if obj.is_alias else obj
        except Exception:  # missing member, or an alias to something outside the package
            return None

    def __call__(self, obj: Object, target: str) -> str | None:
        head, _, rest = target.lstrip(".").partition(".")
        if head == self.pkg.name:
            base = head
        else:
            try:
                base = obj.resolve(head)
            except NameResolutionError:
                paths = self.by_name.get(head, set())
                base = next(iter(paths)) if len(paths) == 1 else None
        found = self.find(f"{base}.{rest}" if base and rest else base) if base else None
        return found.path if found is not None else None


def walk(obj: Object) -> Iterator[Object]:
    """``obj`` and every object defined under it (aliases, i.e. imported names, skipped)."""
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from walk(member)


class DGBlocksDocstrings(Extension):
    """Rewrites the docstrings of each loaded package (see the module docstring)."""

    def on_package(self, *, pkg: Module, loader: GriffeLoader, **kwargs: Any) -> None:
        resolver = _Resolver(pkg)
        for obj in walk(pkg):
            doc = obj.docstring
            if doc is None or not doc.value:
                continue
            doc.value = rewrite_docstring(doc.value, lambda target, obj=obj: resolver(obj, target))
