"""The `channels.whatsapp` section: WhatsApp through Twilio, checked before anything starts."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, model_validator

from channels.settings import RateLimitConfig

_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
_SENDER = re.compile(r"^whatsapp:\+[1-9]\d{1,14}$")
VARIABLES = ("reference", "department", "due", "status", "text")  # what a notice is filled with


class ContentTemplate(BaseModel):
    """An approved WhatsApp template (a Twilio Content SID) and what fills its {{1}}, {{2}}, ..."""

    model_config = ConfigDict(extra="forbid")

    sid: str
    variables: list[str] = Field(default_factory=lambda: ["reference"])

    @model_validator(mode="after")
    def _known(self) -> ContentTemplate:
        if self.sid and not _CONTENT_SID.match(self.sid):  # empty: not approved yet, no template
            raise ValueError(
                "a Content SID is HX followed by 32 hex digits (Twilio console, Content Template Builder)"
            )
        unknown = [name for name in self.variables if name not in VARIABLES]
        if unknown:
            raise ValueError(f"unknown template variable {', '.join(unknown)}; use {', '.join(VARIABLES)}")
        return self


class WhatsappConfig(BaseModel):
    """The `channels.whatsapp` section."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    account_sid: str = ""
    auth_token: str = ""
    from_number: str = ""  # whatsapp:+E.164, e.g. whatsapp:+15005550006; or a messaging service:
    messaging_service_sid: str = ""
    api_base_url: str = "https://api.twilio.com"
    # About 10 messages a second by default (50 on request): PROVIDERS.md.
    rate_limit: RateLimitConfig = Field(default_factory=lambda: RateLimitConfig(per_second=10.0))
    # Outside the 24 hours after the citizen's last message only an approved template may go: the
    # notice's name (router/notices.yaml, or "answer") -> its Content SID, or {sid, variables}.
    content_templates: dict[str, str | ContentTemplate] = Field(default_factory=dict)
    # The largest photo the bot keeps (WhatsApp takes images up to 5 MB, video and documents up to 16 MB).
    max_media_bytes: int = Field(default=16 * 1024 * 1024, ge=1)
    stop_words: list[str] = Field(default_factory=lambda: ["수신거부", "수신 거부"])  # besides Twilio's own
    status_callbacks: bool | None = None  # as for SMS: None asks only when public_url is https
    timeout_seconds: float = Field(default=15.0, gt=0, le=300)

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> WhatsappConfig:
        for notice, template in list(self.content_templates.items()):
            if not (template if isinstance(template, str) else template.sid):
                del self.content_templates[notice]  # "${WHATSAPP_TEMPLATE_...:-}" left empty: none yet
            elif isinstance(template, str):
                self.content_templates[notice] = ContentTemplate(sid=template)
        if self.enabled:
            if not self.account_sid or not self.auth_token:
                raise ValueError("an enabled WhatsApp channel needs account_sid and auth_token")
            if bool(self.from_number) == bool(self.messaging_service_sid):
                raise ValueError("give exactly one of from_number and messaging_service_sid")
            if not _ACCOUNT_SID.match(self.account_sid):
                raise ValueError("account_sid must be AC followed by 32 hex digits (Twilio console)")
            if self.from_number and not _SENDER.match(self.from_number):
                raise ValueError("from_number must be whatsapp:+E.164, e.g. whatsapp:+15005550006")
            if self.messaging_service_sid and not _SERVICE_SID.match(self.messaging_service_sid):
                raise ValueError("messaging_service_sid must be MG followed by 32 hex digits")
        return self

    def template_for(self, notice: str | None) -> ContentTemplate | None:
        """The approved template for a notice (router/notices.yaml's name, or "answer"), if there is one."""
        found = self.content_templates.get(notice or "")
        return found if isinstance(found, ContentTemplate) else None
