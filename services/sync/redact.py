"""Which messages a logged change mentions, and a change with deleted messages' content taken out. No I/O.

A deleted message's content must not outlive it in the change log: every change logged before
its `conversations.message.deleted` is rewritten without it. A change mentions a
message through any JSON object, at any depth, under the key `message` (the message itself)
or `last_message` (a conversation's preview of it, in shared views and personal parts alike)
that has a string `id`.

The walks are iterative: an envelope is as deep as its JSON allows, and a RecursionError here
would stop the logger on the same batch forever.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from typing import Any

from shared.events import Envelope

DELETED_TYPE = "conversations.message.deleted"
MESSAGE, LAST_MESSAGE = "message", "last_message"
# A message id is a UUID. Anything much longer, or text PostgreSQL refuses, names no message.
MAX_ID_CHARS = 200


def storable_id(value: Any) -> bool:
    """Whether `value` can be a message id in the log (text PostgreSQL stores and can index)."""
    if not isinstance(value, str) or not value or len(value) > MAX_ID_CHARS or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate
        return False
    return True


def _mentions(value: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(key, object) for every object under `message` or `last_message` with a storable id, at any depth."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, child in node.items():
                if isinstance(child, dict):
                    if key in (MESSAGE, LAST_MESSAGE) and storable_id(child.get("id")):
                        yield key, child
                    stack.append(child)
                elif isinstance(child, list):
                    stack.append(child)
        elif isinstance(node, list):
            stack.extend(child for child in node if isinstance(child, dict | list))


def mentioned_messages(data: Any) -> list[str]:
    """The ids of the messages a change's data mentions, each once, in no particular order."""
    return list(dict.fromkeys(obj["id"] for _, obj in _mentions(data)))


def deletion(envelope: Envelope) -> str | None:
    """The id of the message `envelope` deletes, None when it is no message deletion."""
    if envelope.type != DELETED_TYPE:
        return None
    message = envelope.data.get(MESSAGE)
    if not isinstance(message, dict) or not storable_id(message.get("id")):
        return None
    return str(message["id"])


# What a deleted message shows in place of its content (`conversations.message.deleted` shows the same).
_NO_CONTENT: dict[str, Any] = {"body": "", "links": [], "attachments": []}


def redact(envelope: Any, message_ids: Collection[str]) -> bool:
    """Take the content of the messages `message_ids` out of a parsed envelope, in place; whether
    anything changed (applying it again changes nothing).

    A message object of theirs gets body "", no links and no attachments; a `last_message`
    preview of theirs gets preview "" (of those keys, the ones it has: one it lacks holds no
    content). Every other key stays as it is, `deleted` included: the
    deletion, logged later, is what tells a client the message is deleted, and a client counts
    it out of its unread count only when its own copy was not deleted yet (docs/realtime.md).
    """
    changed = False
    for key, obj in list(_mentions(envelope)):
        if obj["id"] not in message_ids:
            continue
        blank = {"preview": ""} if key == LAST_MESSAGE else _NO_CONTENT
        for field, value in blank.items():
            if field in obj and (obj[field] != value or type(obj[field]) is not type(value)):
                obj[field] = type(value)()
                changed = True
    return changed


def redacted(envelope_text: str, message_ids: Collection[str]) -> str | None:
    """The stored envelope text with the content of the messages `message_ids` taken out; None when
    it holds none (then it stays byte for byte as it is).

    Written compact, as events are published (`Envelope.to_json`), escaping what is not ASCII so
    that what PostgreSQL's text refuses (\\u0000, unpaired surrogates) stays escaped.
    """
    envelope = json.loads(envelope_text)
    if not redact(envelope, message_ids):
        return None
    return json.dumps(envelope, separators=(",", ":"))
