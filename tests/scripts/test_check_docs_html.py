"""The docs-rendering pair: ``scripts/check_docs_html.py`` (the check of built pages) and
``scripts/griffe_dgblocks.py`` (the griffe extension that makes the pages pass it)."""

import pytest

from scripts.check_docs_html import check_html, main

DEEP_QUOTE = "<blockquote>\n<blockquote>\n<blockquote>\n<p>x = 1\nx</p>\n</blockquote>\n" \
             "</blockquote>\n</blockquote>"
CODE_BLOCK = ('<div class="highlight"><pre><span></span><code><span class="gp">&gt;&gt;&gt; </span>'
              'f(:func:`g`)\n<span class="go">1</span></code></pre></div>')


@pytest.mark.parametrize("html, kind, text", [
    ("<p>see :func:<code>dgblocks.x.f</code>.</p>", "raw role", ":func:`dgblocks.x.f`"),
    ("<p>see :class:`Foo` here</p>", "raw role", ":class:`Foo`"),
    ("<td><p>as :meth:\n<code>step</code></p></td>", "raw role", ":meth:`step`"),
    (DEEP_QUOTE, "doctest as blockquote", "3 nested <blockquote>: x = 1 x"),
    ("<blockquote><p>a &gt;&gt;&gt; b</p></blockquote>", "doctest as blockquote", "a >>> b"),
    ("<p>::: dgblocks.losses</p>", "unrendered directive", "::: dgblocks.losses"),
    ("<p>::</p><pre><code>x = 1</code></pre>", "unrendered directive", "::"),
])
def test_unrendered_markup_is_reported(html, kind, text):
    assert check_html(f"<html><body>{html}</body></html>") == [(kind, text)]


@pytest.mark.parametrize("html", [
    CODE_BLOCK,
    "<p>write <code>:func:`name`</code> in a docstring</p>",
    '<p>see <a class="autorefs" href="#f"><code>f</code></a>: <code>g</code></p>',
    "<blockquote><p>a quoted note, no prompt</p></blockquote>",
    "<p>a time 10:func or :func: alone</p><p><code>x</code></p>",
])
def test_rendered_markup_passes(html):
    assert check_html(f"<html><body>{html}</body></html>") == []


def test_main_names_the_page_and_fails(tmp_path, capsys):
    (tmp_path / "api" / "x").mkdir(parents=True)
    (tmp_path / "api" / "x" / "index.html").write_text(f"<p>:attr:<code>a</code></p>{DEEP_QUOTE}")
    (tmp_path / "index.html").write_text(CODE_BLOCK)
    assert main([str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == ["api/x/index.html: raw role: :attr:`a`",
                   "api/x/index.html: doctest as blockquote: 3 nested <blockquote>: x = 1 x"]
    (tmp_path / "api" / "x" / "index.html").write_text(CODE_BLOCK)
    assert main([str(tmp_path)]) == 0
    assert main([str(tmp_path / "api" / "missing")]) == 1   # no pages: never a silent pass


@pytest.fixture
def ext():
    """The griffe extension; it needs the docs tools (the dev extra)."""
    pytest.importorskip("griffe")
    import scripts.griffe_dgblocks

    return scripts.griffe_dgblocks


def test_doctests_become_fenced_pycon(ext):
    text = ("Intro.\n\nExample:\n    Text.\n    >>> f(1)\n    ... # doctest: +ELLIPSIS\n"
            "    tensor([1,\n    <BLANKLINE>\n            2])\n\n    >>> g()\nReturns:\n    x\n\n"
            "```python\n>>> kept as written\n```")
    assert ext.fence_doctests(text) == (
        "Intro.\n\nExample:\n    Text.\n\n    ```pycon\n    >>> f(1)\n    tensor([1,\n\n"
        "            2])\n    ```\n\n    ```pycon\n    >>> g()\n    ```\n\nReturns:\n    x\n\n"
        "```python\n>>> kept as written\n```")


def test_literal_blocks_become_fenced_python(ext):
    text = "Use::\n\n    a = 1\n\n    b = 2\n\nthen\n\n::\n\n    c\nx::\ny"
    assert ext.fence_literal_blocks(text) == ("Use:\n\n```python\na = 1\n\nb = 2\n```\n\n"
                                              "then\n\n```python\nc\n```\nx::\ny")


def test_roles_become_optional_links_or_code(ext):
    targets = {"f": "pkg.mod.f", "pkg.mod.Bar": "pkg.mod.Bar"}
    text = "See :func:`f`, :class:`~pkg.mod.Bar`, :class:`ValueError`, :ref:`t <x>`.\n" \
           "```\n:func:`f`\n```"
    assert ext.rewrite_roles(text, targets.get) == (
        'See <autoref identifier="pkg.mod.f" optional><code>f</code></autoref>, '
        '<autoref identifier="pkg.mod.Bar" optional><code>Bar</code></autoref>, '
        "`ValueError`, `t`.\n```\n:func:`f`\n```")


def test_grouped_arguments_are_split(ext):
    text = "Args:\n    a, b (int): the sides\n        of it.\n    c: x, y: z\n\nShape:\n    a, b: (N,)"
    assert ext.split_grouped_args(text) == (
        "Args:\n    a (int): the sides\n        of it.\n    b (int): the sides\n        of it.\n"
        "    c: x, y: z\n\nShape:\n    a, b: (N,)")


def test_extension_resolves_names_in_scope(ext):
    modules = {
        "core.py": ('"""Core."""\n\ndef f():\n    """F."""\n\n\nclass Bar:\n'
                    '    """Uses :meth:`step` and :func:`~pkg.core.f`.\n\n    >>> Bar()\n    """\n\n'
                    '    def step(self):\n        """Step."""\n'),
        "use.py": ('"""Imports f: :func:`f`, :meth:`Bar.step`, :class:`Lone`, :func:`nowhere`."""\n'
                   "from pkg.core import Bar, f\n"),
        "other.py": 'class Lone:\n    """L."""\n',
    }
    import griffe

    extensions = griffe.load_extensions(ext.DGBlocksDocstrings())
    with griffe.temporary_visited_package("pkg", modules, extensions=extensions) as pkg:
        bar, use = pkg["core.Bar"].docstring.value, pkg["use"].docstring.value
    assert bar == ('Uses <autoref identifier="pkg.core.Bar.step" optional><code>step</code>'
                   '</autoref> and <autoref identifier="pkg.core.f" optional><code>f</code>'
                   "</autoref>.\n\n```pycon\n>>> Bar()\n```")
    assert 'identifier="pkg.core.f"' in use and 'identifier="pkg.core.Bar.step"' in use
    assert 'identifier="pkg.other.Lone"' in use and "`nowhere`" in use
