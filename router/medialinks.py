"""Links to a citizen's photo for staff tools that show images by URL (Slack fetches an image
block's URL itself): unguessable, signed with the server's secret, and valid for a limited time."""

from __future__ import annotations

import hashlib
import hmac
import time


class MediaLinks:
    def __init__(self, *, public_url: str, secret: str, valid_hours: float) -> None:
        self.public_url = public_url.rstrip("/")
        self._secret = secret.encode()
        self.valid_seconds = int(valid_hours * 3600)

    def _signature(self, media_id: int, expires: int) -> str:
        return hmac.new(self._secret, f"{media_id}:{expires}".encode(), hashlib.sha256).hexdigest()

    def link(self, media_id: int, *, now: float | None = None) -> str:
        expires = int(now if now is not None else time.time()) + self.valid_seconds
        return (
            f"{self.public_url}/media/{media_id}?expires={expires}&sig={self._signature(media_id, expires)}"
        )

    def valid(self, media_id: int, expires: str, signature: str, *, now: float | None = None) -> bool:
        if not expires.isdigit() or int(expires) < (now if now is not None else time.time()):
            return False
        return hmac.compare_digest(self._signature(media_id, int(expires)), signature)
