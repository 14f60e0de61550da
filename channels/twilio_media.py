"""Media that came with an SMS or WhatsApp message: listed in Twilio's form (`attachments_of`),
fetched from the URL Twilio gave (`fetch_media`) with the account's credentials for Twilio only,
within `max_media_bytes`, its failures as SendErrors."""

from __future__ import annotations

from typing import Protocol

import aiohttp
from multidict import MultiDict
from yarl import URL

from channels.base import Attachment, BadRequest, FetchedMedia, PermanentSendError, TransientSendError
from channels.responses import limited_media, retry_after

_MAX_MEDIA = 10  # Twilio sends at most ten media per message


class MediaSettings(Protocol):
    """What a media fetch reads from a Twilio channel's config section (any TwilioSettings)."""

    @property
    def account_sid(self) -> str: ...
    @property
    def auth_token(self) -> str: ...
    @property
    def api_base_url(self) -> str: ...
    @property
    def max_media_bytes(self) -> int: ...


def attachments_of(form: MultiDict[str]) -> tuple[Attachment, ...]:
    """The media of an incoming message's form (NumMedia, MediaUrlN, MediaContentTypeN)."""
    try:
        count = int(form.get("NumMedia") or 0)
    except ValueError as exc:
        raise BadRequest("NumMedia is not a number") from exc
    if not 0 <= count <= _MAX_MEDIA:
        raise BadRequest(f"NumMedia {count} is outside 0..{_MAX_MEDIA}")
    attachments = []
    for index in range(count):
        url = form.get(f"MediaUrl{index}")
        if not url:
            raise BadRequest(f"NumMedia is {count} but MediaUrl{index} is missing")
        attachments.append(Attachment(url=url, content_type=form.get(f"MediaContentType{index}") or None))
    return tuple(attachments)


def _credentials_for(config: MediaSettings, url: URL) -> bool:
    """Only Twilio gets the account's credentials, never a host a URL happens to name."""
    base = URL(config.api_base_url)
    twilio = url.scheme == "https" and (url.host or "").endswith(".twilio.com")
    return twilio or url.origin() == base.origin()


async def fetch_media(
    session: aiohttp.ClientSession, config: MediaSettings, attachment: Attachment
) -> FetchedMedia:
    """The bytes and content type of `attachment`, fetched with `session` (whose timeout bounds it)."""
    url = URL(attachment.url)
    if not url.absolute or url.scheme not in ("http", "https"):
        raise PermanentSendError(f"not a media URL: {attachment.url[:200]}")
    headers = {}
    if _credentials_for(config, url):
        # As a header, not auth=: aiohttp drops it when Twilio redirects to storage on
        # another host, which refuses a second credential.
        headers["Authorization"] = aiohttp.encode_basic_auth(config.account_sid, config.auth_token)
    limit = config.max_media_bytes
    try:
        async with session.get(url, headers=headers) as response:
            if response.status in (404, 410):
                raise PermanentSendError(f"the media is gone ({response.status})")
            if response.status in (401, 403, 429) or response.status >= 500:
                raise TransientSendError(
                    f"media fetch answered {response.status}", retry_after=retry_after(response.headers)
                )
            if response.status >= 400:
                raise PermanentSendError(f"media fetch answered {response.status}")
            return await limited_media(response, limit, attachment)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise TransientSendError(f"media fetch failed: {type(exc).__name__}: {exc}") from exc
