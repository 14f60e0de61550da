"""An HTML mail's text, for a mail without a plain-text part: the standard library's parser, block
elements as line breaks, quoted mail (`<blockquote>`, Gmail's and Outlook's quote containers) left
out, nothing fetched."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "hr"}
_SKIPPED = {"script", "style", "head", "title", "blockquote"}
_QUOTE_CLASSES = ("gmail_quote", "yahoo_quoted", "moz-cite-prefix", "protonmail_quote")
_QUOTE_IDS = ("divrplyfwdmsg", "appendonsend", "mail-editor-reference-message-container")
_VOID = {"br", "hr", "img", "meta", "link", "input", "wbr", "col", "area", "base", "source"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0  # depth inside an element left out
        self.stack: list[tuple[str, bool]] = []  # each open element, and whether it started a skip

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")
        if tag in _VOID:
            return
        values = dict(attrs)
        classes = (values.get("class") or "").lower()
        quote = tag in _SKIPPED or any(c in classes for c in _QUOTE_CLASSES)
        quote = quote or (values.get("id") or "").lower() in _QUOTE_IDS
        self.stack.append((tag, quote))
        self.skipping += quote

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")
        if tag in _VOID or all(open_tag != tag for open_tag, _ in self.stack):
            return
        while self.stack:  # an element left open inside (a <p> without </p>) closes with it
            open_tag, quote = self.stack.pop()
            self.skipping -= quote
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(re.sub(r"[ \t\r\n]+", " ", data))


def html_to_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
