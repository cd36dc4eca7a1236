"""Which Socket.IO event an envelope becomes, with what payload, for which rooms. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.events import CATALOGUE, Envelope


@dataclass(frozen=True, slots=True)
class Delivery:
    event: str
    payload: dict[str, Any]
    rooms: list[str]


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def client_bindings() -> tuple[str, ...]:
    """The routing keys of every event type clients see (routing key = event type)."""
    return tuple(sorted(name for name, spec in CATALOGUE.items() if spec.client_event))


def client_event(envelope: Envelope) -> str | None:
    """The Socket.IO event name, or None when clients never see this type."""
    spec = CATALOGUE.get(envelope.type)
    # A type this process does not know yet (a newer producer) is skipped, not an error.
    return spec.client_event if spec is not None else None


def client_payload(envelope: Envelope) -> dict[str, Any]:
    return {
        **envelope.data,
        "event_id": envelope.id,
        "occurred_at": envelope.occurred_at,
        "cursor": envelope.data.get("cursor"),
    }


def rooms(envelope: Envelope) -> list[str]:
    """One room per audience member, each once, in audience order; no audience means no one."""
    return [user_room(user_id) for user_id in dict.fromkeys(envelope.audience or ())]


def delivery_for(envelope: Envelope) -> Delivery | None:
    """What to emit, or None when the envelope is for no client at all."""
    event = client_event(envelope)
    targets = rooms(envelope)
    if event is None or not targets:
        return None
    return Delivery(event=event, payload=client_payload(envelope), rooms=targets)
