"""What a citizen wrote in a reply, without the quoted mail below it or their signature.

mail-parser-reply (`EmailMessage` with Korean and English) finds the headers clients put above a
quote ("On ... wrote:", Outlook's "From: / Sent:" block, "-----Original Message-----", the Korean
"보낸 사람:" block) and the usual signatures ("-- ", "Sent from my iPhone", "Best regards").
It misses some Korean clients' lines, which are cut here first: Gmail's "...님이 작성:", Apple
Mail's "2026. 11. 3. 오전 10:00, X <x@y> 작성:", Thunderbird's "... 쓴 글:", "----- 원본 메시지 -----"
(Daum, Samsung, Korean Outlook), and phones' "...에서 보냄" / "...에서 보냈습니다" lines. Lines
quoted with "> " are left out wherever they are (an answer below the quote, too), and a "signature"
whose first line is a long sentence (the library takes any line starting "감사합니다." or "Thanks,"
for one) is kept. bench/mail_replies.py measures
how well this does on sample replies from several clients (tests/channels/mail_samples/).
"""

from __future__ import annotations

import re

from mailparser_reply.parser import EmailMessage  # type: ignore[import-untyped]

LANGUAGES = ("ko", "en")
_SIGN_OFF_CHARS = 20

# Lines that begin a quoted mail, which the library does not know (matched on stripped lines).
_QUOTE_HEADERS = re.compile(
    "|".join(
        (
            # Gmail ko
            r"^.{0,80}\d{4}년\s*\d{1,2}월\s*\d{1,2}일.{0,120}님이\s*작성(?:하였습니다|했습니다)?\s*:\s*$",
            r"^\d{4}\.\s*\d{1,2}\.\s*\d{1,2}\.?.{0,120}작성\s*:\s*$",  # Apple Mail ko
            r"^.{0,160}(?:이\(가\)|님이)\s*쓴\s*글\s*:\s*$",  # Thunderbird ko
            r"^-{2,}\s*(?:원본\s*메(?:시지|일)|Original\s+Message|Forwarded\s+message|전달된\s*메시지)\s*-{2,}\s*$",
            r"^_{20,}\s*$",  # Outlook's rule above its header block
        )
    ),
    re.MULTILINE | re.IGNORECASE,
)
# A phone's signature line: short, and nothing of the citizen's follows it.
_SENT_FROM = re.compile(
    r"^(?:.{0,40}(?:에서\s*보냄|에서\s*보냈습니다\.?)|(?:Sent from|Get Outlook for) .{0,60})$", re.IGNORECASE
)


def reply_text(body: str) -> str:
    """The new text of a reply: the quoted mail and the signature cut off."""
    text = "\n".join(line.rstrip() for line in body.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    header = _QUOTE_HEADERS.search(text)
    if header is not None:
        text = text[: header.start()]
    # Quoted lines are the mail being answered, wherever they are (above the answer, between
    # answers): what was quoted is ours or the citizen's earlier mail, kept on the ticket already.
    text = "\n".join(line for line in text.split("\n") if not line.lstrip().startswith(">"))
    text = _cut_with_library(text)
    return _without_phone_line(text).strip()


def _cut_with_library(text: str) -> str:
    if not text.strip():
        return ""
    # keep_hyphen_lists: a citizen's "- the lamp at ..." list is not a signature ("-- " still is).
    message = EmailMessage(text=text, languages=list(LANGUAGES), keep_hyphen_lists=True).read()
    if not message.replies:
        return text
    first = message.replies[0]
    if first.headers:  # the mail begins with a quote header: nothing new above it
        return ""
    opening = str(first.signatures or "").strip().split("\n")[0].strip()
    if len(opening) > _SIGN_OFF_CHARS and not _SENT_FROM.match(opening):
        # A sign-off is a short line; "감사합니다. 그런데 아직도 ..." is the citizen still talking.
        return str(first.full_body)
    return str(first.body)


def _without_phone_line(text: str) -> str:
    lines = text.split("\n")
    while lines and (not lines[-1].strip() or _SENT_FROM.match(lines[-1].strip())):
        lines.pop()
    return "\n".join(lines)
