"""The `channels.email` section: a mailbox read over IMAP and answered over SMTP."""

from __future__ import annotations

from email.utils import parseaddr
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from channels.settings import RateLimitConfig

Security = Literal["ssl", "starttls", "none"]


class EmailConfig(BaseModel):
    """The `channels.email` section."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    imap_host: str = ""
    imap_port: int = Field(default=993, ge=1, le=65535)
    imap_security: Security = "ssl"
    imap_user: str = ""
    imap_password: str = ""
    folder: str = "INBOX"
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Security = "starttls"
    smtp_user: str = ""
    smtp_password: str = ""
    from_address: str = ""  # the city's address citizens write to, e.g. "City of Seoul <help@seoul.example>"
    # Other addresses of this mailbox (aliases): mail from them is ours, never a citizen's.
    own_addresses: list[str] = Field(default_factory=list)
    # The subject of a mail that answers no mail of the citizen's (the ticket's reference is added).
    subject: str = "민원 안내 / Your request to the city"
    # A private certificate authority (PEM) to trust for IMAP and SMTP over TLS; empty: the system's.
    ca_file: str = ""
    poll_seconds: float = Field(default=60.0, gt=0)  # without IDLE, or between IDLE rounds
    idle: bool = True  # use IMAP IDLE where the server has it
    max_message_bytes: int = Field(default=25 * 1024 * 1024, ge=1)
    rate_limit: RateLimitConfig = Field(default_factory=lambda: RateLimitConfig(per_second=2.0))
    timeout_seconds: float = Field(default=30.0, gt=0, le=300)

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> EmailConfig:
        if self.enabled:
            missing = [
                key
                for key in ("imap_host", "imap_user", "imap_password", "smtp_host", "from_address")
                if not getattr(self, key)
            ]
            if missing:
                raise ValueError(f"an enabled e-mail channel needs {', '.join(missing)}")
            address = parseaddr(self.from_address)[1]
            if "@" not in address or "." not in address.rpartition("@")[2]:
                raise ValueError("from_address must be an e-mail address, e.g. City Hall <help@city.example>")
        return self
