"""Which Socket.IO packets a logged change becomes, and for whom. No I/O.

A change goes to every audience member connected to this process, each with their own
personal part and cursor. Encoding the payload is most of the cost, so it is encoded once
per distinct part (once in all for most events) and only the cursor is added per member:
the text is a Socket.IO v5 EVENT packet for the default namespace, `2["<event>",{...}]`,
exactly what python-socketio's `emit` would have written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from shared.events import LOGGED_PREFIX, Envelope, client_event, client_types, client_view, personal_index

EVENT_PACKET = "2"


@dataclass(frozen=True, slots=True)
class Delivery:
    event: str
    user_id: str
    packet: str  # the Socket.IO packet text

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.packet[len(EVENT_PACKET) :])[1]


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def client_bindings() -> tuple[str, ...]:
    """Client-visible events as the sync service republishes them, each with its log position."""
    return tuple(LOGGED_PREFIX + name for name in client_types())


def _packet_head(event: str, payload: dict[str, Any]) -> str:
    """The packet up to where the cursor goes: `2["event",{...,"cursor":`."""
    payload.pop("cursor", None)
    encoded = json.dumps([event, payload], separators=(",", ":"))
    return EVENT_PACKET + encoded[:-2] + ',"cursor":'


def deliveries(
    envelope: Envelope,
    here: Callable[[str], bool],
    cursor_for: Callable[[str, int], str],
) -> Iterator[Delivery]:
    """One delivery per audience member connected `here`, each with their own part and cursor."""
    # A type this process does not know yet (a newer producer) is skipped, not an error.
    event = client_event(envelope.type)
    if event is None or envelope.seq is None:
        return
    parts = personal_index(envelope.data)
    heads: dict[int, str] = {}  # by the identity of the personal part (None: the shared view)
    for user_id in dict.fromkeys(envelope.audience or ()):
        if not here(user_id):
            continue
        part = parts.get(user_id)
        head = heads.get(id(part))
        if head is None:
            head = heads[id(part)] = _packet_head(event, client_view(envelope, part))
        yield Delivery(event, user_id, head + json.dumps(cursor_for(user_id, envelope.seq)) + "}]")
