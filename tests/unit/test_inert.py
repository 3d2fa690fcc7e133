"""External text made inert: no escapes, no control characters, no Markdown or HTML structure."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from firebreak import inert

MD = MarkdownIt("commonmark", {"html": True}).enable("table")  # html on: raw HTML would show as tokens


def inline_tokens(markdown: str) -> list[str]:
    return [child.type for token in MD.parse(markdown) for child in (token.children or [])]


@pytest.mark.parametrize(
    ("hostile", "visible"),
    [
        ("\x1b[31mred\x1b[0m alert", "red alert"),
        ("\x1b]8;;http://evil.example\x07click\x1b]8;;\x07", "click"),
        ("nul\x00byte and bell\x07", "nulbyte and bell"),
        ("right-to-left \u202eexe.txt", "right-to-left exe.txt"),
        ("two\nlines\r\nthree", "two lines three"),
    ],
    ids=["ansi-colour", "ansi-hyperlink", "nul-and-bell", "bidi-override", "newlines"],
)
def test_clean_removes_what_no_reader_needs(hostile: str, visible: str) -> None:
    assert inert.clean(hostile) == visible


def test_clean_bounds_length_and_keeps_newlines_only_when_asked() -> None:
    assert inert.clean("x" * 50, 10) == "x" * 9 + "…"
    assert inert.clean("a\nb\x00", keep_newlines=True) == "a\nb"


@pytest.mark.parametrize(
    "hostile",
    [
        "# Heading",
        "<script>alert(1)</script>",
        "[click](javascript:alert(1))",
        "![img](http://evil.example/x.png)",
        "**bold** _em_ `code` ~~gone~~",
        "- list item",
        "1. ordered",
        "> quote",
        "cell | break",
        "&lt;script&gt;",
    ],
)
def test_md_text_starts_no_markdown_structure(hostile: str) -> None:
    """Inside a paragraph and inside a table cell, only plain text comes out."""
    escaped = inert.md(hostile)
    paragraph = MD.parse(f"said: {escaped}")
    assert [t.type for t in paragraph] == ["paragraph_open", "inline", "paragraph_close"]
    assert set(inline_tokens(f"said: {escaped}")) <= {"text", "softbreak"}
    assert set(inline_tokens(escaped)) <= {"text"}
    assert [t.type for t in MD.parse(escaped)][0] == "paragraph_open"  # not a heading, list or quote
    table = MD.parse(f"| a | b |\n|---|---|\n| {escaped} | x |\n")
    assert sum(1 for t in table if t.type == "td_open") == 2


def test_md_keeps_ordinary_text_readable() -> None:
    assert inert.md("demand_index drifted 0.42 -> 0.9 (p < 0.05)") == "demand_index drifted 0.42 -> 0.9 (p &lt; 0.05)"


def test_code_span_and_block_cannot_be_closed_from_inside() -> None:
    span = inert.md_code("a`b``c")
    assert MD.renderInline(span) == "<code>a`b``c</code>"
    block = inert.md_block("```\n# not a heading\n<script>x</script>\n```")
    tokens = MD.parse(block + "\n\nafter")
    assert tokens[0].type == "fence" and "# not a heading" in tokens[0].content
    assert [t.type for t in tokens[1:]] == ["paragraph_open", "inline", "paragraph_close"]


def test_html_escapes_text_and_attributes() -> None:
    assert inert.html('<img src=x onerror="alert(1)">\x00') == "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"


def test_chart_labels_are_never_mathtext() -> None:
    assert inert.label("$\\frac{1}{0}$") == "\\$\\frac{1}{0}\\$"
