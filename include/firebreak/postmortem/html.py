"""The post-mortem as one self-contained HTML page: the Markdown rendered, charts inline.

SOP stage *Learn*: logged to the incident's MLflow run beside the Markdown, and served by
the incident console. Raw HTML in the Markdown is never passed through (markdown-it's
``html`` option is off, so ``<script>`` arrives as text even if escaping upstream failed),
links are limited to markdown-it's safe schemes, and chart images become ``data:`` URIs so
the page needs nothing else. The page carries a Content-Security-Policy that allows no
script at all.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping

from firebreak.inert import html as escape

_STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1c2833}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:14px}th,td{border:1px solid #d5d8dc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f6f7}code{background:#f4f6f7;padding:0 .2rem;border-radius:3px}pre{background:#f4f6f7;padding:.75rem;overflow:auto;white-space:pre-wrap}
img{max-width:100%;border:1px solid #eaecee;margin:.5rem 0}h1{font-size:1.6rem}h2{border-bottom:1px solid #d5d8dc;padding-bottom:.2rem;margin-top:2rem}
"""
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(([^)\s]+)\)")


def to_html(markdown: str, title: str, images: Mapping[str, bytes]) -> str:
    """Render the post-mortem's Markdown; ``images`` maps each image path it names to PNG bytes."""
    from markdown_it import MarkdownIt

    def inline(match: re.Match[str]) -> str:
        png = images.get(match.group(2))
        if png is None:
            return match.group(0)
        return f"![{match.group(1)}](data:image/png;base64,{base64.b64encode(png).decode()})"

    body = (
        MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").render(_IMAGE.sub(inline, markdown))
    )
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{escape(title, 200)}</title><style>{_STYLE}</style></head>\n<body>\n{body}</body></html>\n"
    )
