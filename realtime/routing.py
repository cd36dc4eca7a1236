"""Which Socket.IO event a logged change becomes, for whom, with what payload. No I/O."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from shared.events import CATALOGUE, LOGGED_PREFIX, Envelope, client_types, client_view, personal_index


@dataclass(frozen=True, slots=True)
class Delivery:
    event: str
    payload: dict[str, Any]
    user_id: str


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def client_bindings() -> tuple[str, ...]:
    """Client-visible events as the sync service republishes them, each with its log position."""
    return tuple(LOGGED_PREFIX + name for name in client_types())


def client_event(envelope: Envelope) -> str | None:
    """The Socket.IO event name, or None when clients never see this type."""
    spec = CATALOGUE.get(envelope.type)
    # A type this process does not know yet (a newer producer) is skipped, not an error.
    return spec.client_event if spec is not None else None


def deliveries(
    envelope: Envelope,
    here: Callable[[str], bool],
    cursor_for: Callable[[str, int], str],
) -> Iterator[Delivery]:
    """One delivery per audience member connected `here`, each with their own part and cursor."""
    event = client_event(envelope)
    if event is None or envelope.seq is None:
        return
    parts = personal_index(envelope.data)
    shared = client_view(envelope, None)
    for user_id in dict.fromkeys(envelope.audience or ()):
        if not here(user_id):
            continue
        part = parts.get(user_id)
        payload = client_view(envelope, part) if part is not None else dict(shared)
        payload["cursor"] = cursor_for(user_id, envelope.seq)
        yield Delivery(event=event, payload=payload, user_id=user_id)
