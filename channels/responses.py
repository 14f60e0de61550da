"""What the adapters that call providers over HTTP share about a response: how long it asks us to
wait (Retry-After), and its body read within a size limit (a citizen's photo, a media URL's file)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp
from multidict import CIMultiDictProxy

from channels.base import Attachment, FetchedMedia, PermanentSendError


def retry_after(headers: CIMultiDictProxy[str] | None) -> float | None:
    """A response's Retry-After in seconds (given as seconds or as a date), or None."""
    value = headers.get("Retry-After") if headers else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


async def limited_media(response: aiohttp.ClientResponse, limit: int, attachment: Attachment) -> FetchedMedia:
    """A successful response's body as media, refused for good once it is over `limit` bytes."""
    if (response.content_length or 0) > limit:
        raise PermanentSendError(f"the media has {response.content_length} bytes, over {limit}")
    data = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise PermanentSendError(f"the media is over {limit} bytes")
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    return FetchedMedia(bytes(data), content_type or attachment.content_type or "application/octet-stream")
