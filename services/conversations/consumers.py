"""Events the conversations service consumes: each handled once, against current state."""

from __future__ import annotations

from services.conversations import actions
from shared.bus import ConsumerSpec
from shared.config import Settings
from shared.db import transaction
from shared.events import Envelope
from shared.outbox import claim_event

DIRECTORY_EVENTS = "conversations.directory-events"


def consumers(settings: Settings) -> list[ConsumerSpec]:
    url = settings.database_url("conversations")

    def on_directory_event(envelope: Envelope) -> None:
        with transaction(url) as session:
            if not claim_event(session, DIRECTORY_EVENTS, envelope.id):
                return
            if envelope.type == "directory.user.upserted":
                actions.update_known_person(session, envelope.data)

    return [
        ConsumerSpec(
            DIRECTORY_EVENTS,
            ("directory.#",),
            on_directory_event,
            prefetch=settings.consumer_prefetch,
        )
    ]
