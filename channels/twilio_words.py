"""Twilio's keywords for SMS and WhatsApp: a whole message that says stop, start again or help."""

from __future__ import annotations

from collections.abc import Sequence

from channels.base import Command

# Twilio's own keywords (it answers STOP itself and blocks later sends with error 21610); the
# message still reaches us and the router records the choice. Matched on the whole message.
STOP_WORDS = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT")
UNSTOP_WORDS = ("START", "UNSTOP", "YES")
HELP_WORDS = ("HELP", "INFO")


def command_of(text: str, extra_stop_words: Sequence[str] = ()) -> Command | None:
    """Twilio's keyword meaning of a whole message: stop, unstop or help (None for anything else)."""
    word = " ".join(text.split()).upper()
    if word in STOP_WORDS or word in {" ".join(w.split()).upper() for w in extra_stop_words}:
        return "stop"
    if word in UNSTOP_WORDS:
        return "unstop"
    if word in HELP_WORDS:
        return "help"
    return None
