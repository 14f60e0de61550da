"""Open311 GeoReport v2 answers in its two formats, chosen by the URL's suffix (`requests.json`,
`requests.xml`). The JSON is the XML mapped by the spec's "Spark convention": a list of items is a
JSON array, an empty element is null. Element names are the spec's (wiki.open311.org/GeoReport_v2):
<services><service>, <service_requests><request>, <errors><error><code><description>."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Literal

from aiohttp import web

Format = Literal["json", "xml"]
FORMATS: tuple[Format, ...] = ("json", "xml")
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
MIME = {"json": "application/json", "xml": "text/xml"}

# What a nested list's items are called in XML (discovery's endpoints and formats).
_ITEM_NAMES = {"endpoints": "endpoint", "formats": "format", "attributes": "attribute"}

_NOT_IN_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # XML 1.0 has no such characters


class Open311Error(Exception):
    """A request the API refuses: the HTTP status (400, 403 or 404) and what to tell the app."""

    def __init__(self, status: int, *descriptions: str) -> None:
        super().__init__("; ".join(descriptions))
        self.status = status
        self.descriptions = descriptions


def format_of(suffix: str) -> Format:
    if suffix == "json":
        return "json"
    if suffix == "xml":
        return "xml"
    raise Open311Error(400, f"unknown format {suffix[:20]!r}: use .json or .xml")


def w3c(at: datetime | None, zone: tzinfo) -> str | None:
    """A time as the spec wants it: W3C (ISO 8601) with the offset, in the city's time zone."""
    return at.astimezone(zone).isoformat(timespec="seconds") if at is not None else None


def answer(fmt: Format, root: str, item: str | None, body: object, *, status: int = 200) -> web.Response:
    """`body` as JSON, or as XML under `root` (each element of a list named `item`)."""
    if fmt == "json":
        return web.json_response(body, status=status)
    element = ET.Element(root)
    if item is None:
        _fill(element, body)
    else:
        for entry in body if isinstance(body, Sequence) and not isinstance(body, str) else ():
            _fill(ET.SubElement(element, item), entry)
    text = '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(element, encoding="unicode")
    return web.Response(text=text, status=status, content_type="text/xml", charset="utf-8")


def error_answer(fmt: Format, error: Open311Error) -> web.Response:
    """The spec's error list: [{"code": 403, "description": "..."}], or <errors><error>..."""
    errors = [{"code": error.status, "description": d} for d in error.descriptions]
    return answer(fmt, "errors", "error", errors, status=error.status)


def _fill(element: ET.Element, value: object) -> None:
    if value is None:
        return  # an empty element: JSON's null
    if isinstance(value, Mapping):
        for key, child in value.items():
            _fill(ET.SubElement(element, str(key)), child)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        name = _ITEM_NAMES.get(element.tag, "item")
        for child in value:
            _fill(ET.SubElement(element, name), child)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    else:
        element.text = _NOT_IN_XML.sub("", str(value))
