"""Block Kit for the Slack stand-in (tests/fakes/slack.py): what Slack refuses in a message's blocks
(chat.postMessage, .update, .postEphemeral: `invalid_blocks`) and in a modal (views.open), worded as
Slack words it in `errors` / `response_metadata.messages` with a JSON pointer to the offending value:
block and element types, text and count limits, action and block ids. A refusal is a `SlackError`,
Slack's error format, which the stand-in's other refusals use too. And the other side: trigger ids,
the modals opened with them, and what Slack sends back when a person clicks a button or submits a
modal (`block_actions`, `view_submission`; the workspace's ids and the signature: slack.py).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

MAX_TEXT = 40_000  # chat.postMessage's text; longer is refused here (Slack may truncate instead)
TRIGGER_LIFETIME = 3.0  # seconds a trigger_id can be exchanged for a modal
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100

BLOCK_TYPES = {
    "section",
    "divider",
    "image",
    "actions",
    "context",
    "header",
    "input",
    "rich_text",
    "markdown",
    "file",
    "video",
}
# The interactive elements an `actions` block, a section's accessory or an input may hold.
ELEMENT_TYPES = {
    "button",
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
    "overflow",
    "multi_static_select",
    "datepicker",
    "timepicker",
    "checkboxes",
    "radio_buttons",
    "plain_text_input",
    "number_input",
    "email_text_input",
    "url_text_input",
    "rich_text_input",
}


class SlackError(Exception):
    """A refusal as Slack answers it: `{"ok": false, "error": ...}` at HTTP `status` (200 for most), the
    problems found in Slack's wording (`response_metadata.messages`; `errors` too for blocks)."""

    def __init__(
        self, error: str, problems: list[str] | None = None, status: int = 200, retry_after: int = 1
    ) -> None:
        super().__init__(error)
        self.error, self.problems, self.status = error, problems or [], status
        self.headers = {"Retry-After": str(retry_after)} if status == 429 else None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error": self.error}
        if self.problems:
            body["response_metadata"] = {"messages": [f"[ERROR] {problem}" for problem in self.problems]}
        return body | ({"errors": self.problems} if self.error == "invalid_blocks" else {})


def _too_long(value: Any, limit: int, pointer: str) -> list[str]:
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        return [f"must be less than {limit + 1} characters [json-pointer:{pointer}]"]
    return []


def text_problems(obj: Any, pointer: str, *, max_length: int, plain_only: bool = False) -> list[str]:
    """A text object: `plain_text` (or `mrkdwn` where allowed), 1 to `max_length` characters."""
    if not isinstance(obj, dict):
        return [f"must be an object [json-pointer:{pointer}]"]
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if obj.get("type") not in kinds:
        return [f"must be one of {list(kinds)} [json-pointer:{pointer}/type]"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"must be more than 0 characters [json-pointer:{pointer}/text]"]
    return _too_long(text, max_length, f"{pointer}/text")


def element_problems(element: Any, pointer: str) -> list[str]:
    """An interactive element: its type, action_id, and a button's or a select's own limits."""
    if not isinstance(element, dict) or element.get("type") not in ELEMENT_TYPES:
        return [f"must provide an object with a known element type [json-pointer:{pointer}]"]
    kind = element["type"]
    problems = _too_long(element.get("action_id"), 255, f"{pointer}/action_id")
    if kind == "button":
        problems += text_problems(element.get("text"), f"{pointer}/text", max_length=75, plain_only=True)
        problems += _too_long(element.get("value"), 2000, f"{pointer}/value")
        if element.get("style") not in (None, "primary", "danger"):
            problems.append(f"must be one of [primary, danger] [json-pointer:{pointer}/style]")
    elif kind == "static_select":
        options = element.get("options")
        if not isinstance(options, list) or not 1 <= len(options) <= 100:
            return [*problems, f"must have 1 to 100 items [json-pointer:{pointer}/options]"]
        for j, option in enumerate(options):
            at = f"{pointer}/options/{j}"
            if not isinstance(option, dict):
                problems.append(f"must be an object [json-pointer:{at}]")
                continue
            problems += text_problems(option.get("text"), f"{at}/text", max_length=75, plain_only=True)
            if not option.get("value"):
                problems.append(f"must be more than 0 characters [json-pointer:{at}/value]")
            problems += _too_long(option.get("value"), 150, f"{at}/value")
    elif kind == "plain_text_input":
        problems += _too_long(element.get("initial_value"), 3000, f"{pointer}/initial_value")
    return problems


def _block_problems(block: dict[str, Any], at: str) -> list[str]:
    kind, problems = block["type"], list[str]()
    if kind == "section":
        if "text" not in block and "fields" not in block:
            problems.append(f"must provide text or fields [json-pointer:{at}]")
        if "text" in block:
            problems += text_problems(block["text"], f"{at}/text", max_length=3000)
        fields = block.get("fields", [])
        if not isinstance(fields, list) or len(fields) > 10:
            problems.append(f"no more than 10 items allowed [json-pointer:{at}/fields]")
        else:
            for j, item in enumerate(fields):
                problems += text_problems(item, f"{at}/fields/{j}", max_length=2000)
        accessory = block.get("accessory")
        if accessory is not None and not (isinstance(accessory, dict) and accessory.get("type") == "image"):
            problems += element_problems(accessory, f"{at}/accessory")
    elif kind == "header":
        problems += text_problems(block.get("text"), f"{at}/text", max_length=150, plain_only=True)
    elif kind in ("actions", "context"):
        elements = block.get("elements")
        limit = 25 if kind == "actions" else 10
        if not isinstance(elements, list) or not 1 <= len(elements) <= limit:
            return [f"must have 1 to {limit} items [json-pointer:{at}/elements]"]
        for j, element in enumerate(elements):
            if kind == "actions":
                problems += element_problems(element, f"{at}/elements/{j}")
            elif not (isinstance(element, dict) and element.get("type") == "image"):
                problems += text_problems(element, f"{at}/elements/{j}", max_length=3000)
    elif kind == "image":
        url, alt = block.get("image_url"), block.get("alt_text")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            problems.append(f"must be a valid URL [json-pointer:{at}/image_url]")
        problems += _too_long(url, 3000, f"{at}/image_url")
        if not isinstance(alt, str) or not alt:
            problems.append(f"must be more than 0 characters [json-pointer:{at}/alt_text]")
        problems += _too_long(alt, 2000, f"{at}/alt_text")
    elif kind == "input":
        problems += text_problems(block.get("label"), f"{at}/label", max_length=2000, plain_only=True)
        problems += element_problems(block.get("element"), f"{at}/element")
    return problems


def block_problems(blocks: Any, *, max_blocks: int = MAX_MESSAGE_BLOCKS) -> list[str]:
    """Why Slack would answer `invalid_blocks`, or an empty list."""
    if not isinstance(blocks, list):
        return ["must be an array [json-pointer:/blocks]"]
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(f"no more than {max_blocks} items allowed [json-pointer:/blocks]")
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        at = f"/blocks/{i}"
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            problems.append(f"must provide a known block type [json-pointer:{at}/type]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not 1 <= len(block_id) <= 255:
                problems.append(f"must be 1 to 255 characters [json-pointer:{at}/block_id]")
            elif block_id in block_ids:
                problems.append(f"duplicate block_id {block_id} [json-pointer:{at}/block_id]")
            block_ids.add(str(block_id))
        problems += _block_problems(block, at)
    return problems


def view_problems(view: Any) -> list[str]:
    """Why Slack would refuse a modal (`invalid_arguments`), or an empty list."""
    if not isinstance(view, dict):
        return ["must be an object [json-pointer:/view]"]
    if view.get("type") != "modal":
        return ["must be one of [modal] [json-pointer:/view/type]"]
    problems = text_problems(view.get("title"), "/title", max_length=24, plain_only=True)
    for key in ("submit", "close"):
        if key in view:
            problems += text_problems(view[key], f"/{key}", max_length=24, plain_only=True)
    blocks = view.get("blocks")
    problems += block_problems(blocks, max_blocks=MAX_VIEW_BLOCKS)
    inputs = (
        [b for b in blocks if isinstance(b, dict) and b.get("type") == "input"]
        if isinstance(blocks, list)
        else []
    )
    if inputs and "submit" not in view:
        problems.append("submit is required when input blocks are present [json-pointer:/submit]")
    problems += _too_long(view.get("private_metadata"), 3000, "/private_metadata")
    problems += _too_long(view.get("callback_id"), 255, "/callback_id")
    return [p.replace("[json-pointer:/", "[json-pointer:/view/") for p in problems]


def check_message(text: str, blocks: Any) -> None:
    """What chat.postMessage, .update and .postEphemeral refuse: bad blocks, no text, too much."""
    if blocks is not None and (problems := block_problems(blocks)):
        raise SlackError("invalid_blocks", problems)
    if not text and not blocks:
        raise SlackError("no_text")
    if len(text) > MAX_TEXT:
        raise SlackError("msg_too_long")


# --- modals, and what Slack sends back when a person uses a message's buttons or a modal --------------


def new_trigger_id(issued_at: float | None = None) -> str:
    """A trigger_id, `{issued_ms}.{random}.{hex}` (`issued_at`: the wall clock's seconds)."""
    issued = time.time() if issued_at is None else issued_at
    return f"{int(issued * 1000)}.{secrets.randbelow(10**9)}.{secrets.token_hex(10)}"


@dataclass
class OpenedView:
    trigger_id: str
    view: dict[str, Any]  # as the app sent it
    view_id: str = field(default_factory=lambda: "V" + secrets.token_hex(5).upper())


class Modals:
    """views.open's side: a trigger_id is exchanged once, within 3 s, for a modal that passes the checks
    (`new_trigger_id` writes the time it was issued into it, as the click that carried it would)."""

    def __init__(self) -> None:
        self.opened: list[OpenedView] = []

    def open(self, trigger_id: str, view: Any) -> OpenedView:
        issued, _, rest = trigger_id.partition(".")
        if not issued.isdigit() or not rest:
            raise SlackError("invalid_trigger_id")
        if any(opened.trigger_id == trigger_id for opened in self.opened):
            raise SlackError("exchanged_trigger_id")
        if time.time() - int(issued) / 1000 > TRIGGER_LIFETIME:
            raise SlackError("expired_trigger_id")
        if problems := view_problems(view):
            raise SlackError("invalid_arguments", problems)
        self.opened.append(OpenedView(trigger_id, view))
        return self.opened[-1]


def shown_view(view: dict[str, Any], view_id: str, state: dict[str, Any] | None = None) -> dict[str, Any]:
    """A modal as Slack echoes it (views.open's answer, a view_submission's `view`)."""
    shown = {key: view.get(key) for key in ("type", "title", "submit", "close", "callback_id", "blocks")}
    about = {"private_metadata": view.get("private_metadata", ""), "state": {"values": state or {}}}
    return shown | about | {"id": view_id, "root_view_id": view_id, "previous_view_id": None}


def block_actions(
    *,
    action_id: str,
    value: str,
    user_id: str,
    channel_id: str,
    message_ts: str,
    block_id: str = "blk0",
    message: dict[str, Any] | None = None,
    trigger_id: str | None = None,
) -> dict[str, Any]:
    """A button clicked on a message (`message`: as Slack shows it, else a bare one)."""
    text = {"type": "plain_text", "text": "Button", "emoji": True}
    button = {"type": "button", "action_id": action_id, "block_id": block_id, "value": value, "text": text}
    container = {"type": "message", "message_ts": message_ts, "channel_id": channel_id, "is_ephemeral": False}
    return {
        "type": "block_actions",
        "user": {"id": user_id},
        "trigger_id": trigger_id or new_trigger_id(),
        "container": container,
        "channel": {"id": channel_id, "name": "channel"},
        "message": message or {"type": "message", "ts": message_ts, "text": ""},
        "state": {"values": {}},
        "actions": [button | {"action_ts": f"{time.time():.6f}"}],
    }


def view_submission(
    *, callback_id: str, values: dict[str, dict[str, Any]], user_id: str, view: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A modal submitted: `values` is `{block_id: {action_id: value}}`, a plain string standing for a
    plain_text_input's value, a dict for Slack's state entry itself. `view`: the view the app opened,
    echoed with its blocks, title and metadata."""
    opened = view or {"type": "modal", "title": {"type": "plain_text", "text": "Form"}, "blocks": []}
    state = {
        block: {
            action: {"type": "plain_text_input", "value": entry} if isinstance(entry, str) else entry
            for action, entry in actions.items()
        }
        for block, actions in values.items()
    }
    echoed = shown_view(opened | {"callback_id": callback_id}, "V" + secrets.token_hex(5).upper(), state)
    return {
        "type": "view_submission",
        "user": {"id": user_id},
        "trigger_id": new_trigger_id(),
        "view": echoed,
    }
