"""Fail when a built docs page shows docstring markup that did not render.

Reads every ``*.html`` under SITE_DIR (the output of ``mkdocs build``) and reports, per page:

- a raw Sphinx role in rendered text: ``:func:`` (``:class:``, ``:meth:``, ``:mod:``, ``:attr:``,
  ``:data:``, ``:exc:``, ``:obj:``, ``:ref:``) followed by a backtick, or by the inline code
  that Markdown makes of the backticked target (``:func:<code>name</code>``);
- a doctest shown as a quote: ``>>>`` inside a ``<blockquote>``, or blockquotes nested three
  deep, which is what Markdown makes of a ``>>> x`` line;
- a ``::: dgblocks`` directive left as text, or a reST literal-block marker ``::`` alone.

Text inside ``<pre>``, ``<code>``, ``<script>`` and ``<style>`` is not checked (a page may show
the syntax as code). Exit status 1 when anything is found, 0 otherwise.

    python scripts/check_docs_html.py SITE_DIR
"""

from __future__ import annotations

import argparse
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

ROLES = "func|class|meth|mod|attr|data|exc|obj|ref"
ROLE_TEXT = re.compile(rf":(?:{ROLES}):`[^`]*`?")
ROLE_BEFORE_CODE = re.compile(rf":(?:{ROLES}):$")
DIRECTIVE = re.compile(r"^\s*::: *dgblocks\S*", re.M)
CODE_TAGS = {"pre", "code", "script", "style"}


class _PageChecker(HTMLParser):
    """Collects ``(kind, text)`` problems from one page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[tuple[str, str]] = []
        self.code_depth = 0
        self.quote_depth = 0
        self.deep_quote: str | None = None      # text of a 3-deep quote, while collecting it
        self.pending_role: str | None = None    # ":func:" just before a tag
        self.role_code: list[str] | None = None  # text of the <code> after it, while inside

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "code" and self.pending_role is not None and self.code_depth == 0:
            self.role_code = []
        else:
            self.pending_role = None
        if tag in CODE_TAGS:
            self.code_depth += 1
        elif tag == "blockquote":
            self.quote_depth += 1
            if self.quote_depth == 3 and self.deep_quote is None:
                self.deep_quote = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in CODE_TAGS and self.code_depth:
            self.code_depth -= 1
            if tag == "code" and self.role_code is not None and self.code_depth == 0:
                role = f"{self.pending_role}`{''.join(self.role_code)}`"
                self.problems.append(("raw role", role))
                self.role_code = self.pending_role = None
        elif tag == "blockquote" and self.quote_depth:
            self.quote_depth -= 1
            if self.quote_depth == 2 and self.deep_quote is not None:
                self.problems.append(("doctest as blockquote",
                                      f"3 nested <blockquote>: {self.deep_quote[:70]}"))
                self.deep_quote = None

    def handle_data(self, data: str) -> None:
        if self.role_code is not None:
            self.role_code.append(data)
            return
        if self.code_depth:
            return
        if self.deep_quote is not None:
            if not self.deep_quote:
                self.deep_quote = " ".join(data.split())
        elif self.quote_depth and ">>>" in data:
            at = data.index(">>>")
            self.problems.append(("doctest as blockquote",
                                  " ".join(data[max(0, at - 20):at + 60].split())))
        self.problems += [("raw role", m.group(0)) for m in ROLE_TEXT.finditer(data)]
        self.problems += [("unrendered directive", m.group(0).strip())
                          for m in DIRECTIVE.finditer(data)]
        if data.strip() == "::":
            self.problems.append(("unrendered directive", "::"))
        tail = ROLE_BEFORE_CODE.search(data)
        if tail:
            self.pending_role = tail.group(0)
        elif data.strip():
            self.pending_role = None


def check_html(html: str) -> list[tuple[str, str]]:
    """The problems found in one page's HTML, as ``(kind, offending text)``."""
    checker = _PageChecker()
    checker.feed(html)
    checker.close()
    return checker.problems


def check_site(site: Path) -> dict[str, list[tuple[str, str]]]:
    """``{page path relative to site: problems}`` for every page that has any."""
    found = {}
    for page in sorted(site.rglob("*.html")):
        problems = check_html(page.read_text(encoding="utf-8"))
        if problems:
            found[str(page.relative_to(site))] = problems
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the directory mkdocs built into")
    args = parser.parse_args(argv)
    if not any(args.site.rglob("*.html")):
        print(f"{args.site}: no HTML pages found", file=sys.stderr)
        return 1
    found = check_site(args.site)
    counts: dict[str, int] = {}
    for page, problems in found.items():
        for kind, text in problems:
            counts[kind] = counts.get(kind, 0) + 1
            print(f"{page}: {kind}: {text}")
    if found:
        summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
        print(f"{len(found)} page(s) with unrendered docstring markup: {summary}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
