"""External text made inert before it is rendered: Markdown, HTML, charts, the console.

Every string Firebreak did not write itself is hostile: an alert's description and labels,
a model's answers, column and group names from a team's data, an operator's reason. Before
any of it reaches a post-mortem, a chart or the incident console it goes through one of
these functions (RELIABILITY.md case 31):

- :func:`clean` removes what no reader needs and some terminals and renderers obey: ANSI
  escape sequences, NUL and the other C0/C1 control characters, Unicode bidi overrides
  and zero-width characters; newlines become spaces unless kept; long text is cut.
- :func:`md` makes text literal inside a line of Markdown, a table cell included: ``<``
  and entity-like ``&`` become entities and the Markdown metacharacters that could start
  structure are backslash-escaped (CommonMark: any ASCII punctuation may be), so no
  heading, list, link, image, emphasis, table cell break or raw HTML can start inside it,
  while ordinary text (``demand_index``, ``0.42``) stays readable in the raw file.
- :func:`md_code` shows an identifier as inline code, with a fence longer than any
  backtick run inside it; :func:`md_block` fences multi-line text as a code block.
- :func:`html` escapes for HTML text and attribute values.
- :func:`label` is for chart text: matplotlib would otherwise read ``$...$`` as math.
"""

from __future__ import annotations

import html as _html
import re
from typing import Any

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), and two-character escapes (ESC + one byte).
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
# C0 controls but tab and newline, DEL, C1 controls; zero-width and bidi-control characters
# (a right-to-left override can make "exe.txt" read as "txt.exe").
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
# Inline structure: code, emphasis, links and images, table cells, strikethrough. An
# underscore inside a word never starts emphasis (CommonMark), so ``demand_index`` stays
# as written; everything else is escaped wherever it stands.
_MD_SPECIAL = re.compile(r"([\\`*\[\]|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
# What starts a block only at the start of a line: headings, lists, quotes, setext rules.
_MD_LINE_START = re.compile(r"^(\s*)([#>+=-])")
_MD_ORDERED = re.compile(r"^(\s*\d+)([.)])")
_BACKTICKS = re.compile(r"`+")
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")

DEFAULT_LIMIT = 2000


def clean(value: Any, limit: int = DEFAULT_LIMIT, *, keep_newlines: bool = False) -> str:
    """``value`` as plain text a reader can trust: no escapes or control characters, bounded length."""
    text = _ANSI.sub("", "" if value is None else str(value))
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = _CONTROL.sub("", text)
    if not keep_newlines:
        text = " ".join(text.split())
    if len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return text


def md(value: Any, limit: int = DEFAULT_LIMIT) -> str:
    """``value`` as literal text inside one line of Markdown (safe in a table cell)."""
    # "<" starts raw HTML and autolinks, "&name;" an entity; ">" is harmless inside a line.
    text = _ENTITY.sub("&amp;", clean(value, limit)).replace("<", "&lt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), text)
    return _MD_ORDERED.sub(lambda m: m.group(1) + "\\" + m.group(2), text)


def md_code(value: Any, limit: int = 200) -> str:
    """``value`` as inline code (an identifier: a column, a group, a version). Not for table cells."""
    text = clean(value, limit)
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_block(value: Any, limit: int = 4000) -> str:
    """Multi-line text as a fenced code block nothing inside can close."""
    text = clean(value, limit, keep_newlines=True)
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def html(value: Any, limit: int = DEFAULT_LIMIT) -> str:
    """``value`` escaped for HTML text or a quoted attribute."""
    return _html.escape(clean(value, limit), quote=True)


def label(value: Any, limit: int = 40) -> str:
    """``value`` as chart text: cleaned, short, and never read as mathtext."""
    return clean(value, limit).replace("$", r"\$")
