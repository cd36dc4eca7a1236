"""Directory events the conversations service follows: each handled once, against current state."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from services.conversations import actions, membership, moderation
from shared.bus import ConsumerSpec
from shared.config import Settings
from shared.db import transaction
from shared.events import Envelope
from shared.outbox import claim_event
from shared.rpc import RpcClient

DIRECTORY_EVENTS = "conversations.directory-events"
REPORT_EVENTS = "conversations.report-events"


def apply_messaging_change(session: Connection, data: dict[str, Any]) -> None:
    """Mirror an admin's messaging block (or its lifting) on people and course conversations."""
    enabled = bool(data["messaging_enabled"])
    if data.get("user_ids"):
        session.execute(
            text("UPDATE people SET enabled = :on WHERE user_id = ANY(:ids)"), {"on": enabled, "ids": data["user_ids"]}
        )
    if data.get("course_ids"):
        session.execute(
            text(
                "UPDATE conversations SET messaging_blocked = :off WHERE group_kind = 'course' AND group_id = ANY(:ids)"
            ),
            {"off": not enabled, "ids": data["course_ids"]},
        )


def consumers(settings: Settings) -> list[ConsumerSpec]:
    url = settings.database_url("conversations")
    directory = RpcClient(settings)

    def person(user_id: str) -> dict[str, Any] | None:
        users = directory.call("directory", "users.get", {"ids": [user_id]})["users"]
        return users[0] if users else None

    def on_directory_event(envelope: Envelope) -> None:
        data = envelope.data
        # Ask the directory before the transaction, so no database connection waits on RPC.
        joining = person(data["user_id"]) if envelope.type == "directory.enrolment.added" else None
        with transaction(url) as session:
            if not claim_event(session, DIRECTORY_EVENTS, envelope.id):
                return
            if envelope.type == "directory.user.upserted":
                actions.update_known_person(session, data)
            elif envelope.type == "directory.enrolment.added":
                membership.enrolment_added(session, data["kind"], data["group_id"], joining)
            elif envelope.type == "directory.enrolment.removed":
                membership.enrolment_removed(session, data["kind"], data["group_id"], data["user_id"])
            elif envelope.type == "directory.messaging.changed":
                apply_messaging_change(session, data)

    def on_report(envelope: Envelope) -> None:
        """An open report lets its staff in; a closed one lets them out (both idempotent, by report)."""
        report = envelope.data["report"]
        readers = [r["user_id"] for r in report["recipients"]]
        if report["state"] == "open":
            people = directory.call("directory", "users.get", {"ids": readers})["users"]
            with transaction(url) as session:
                for person in people:
                    moderation.grant_access(session, report["id"], report["conversation_id"], person)
            return
        with transaction(url) as session:
            for reader in readers:
                moderation.revoke_access(session, report["id"], report["conversation_id"], reader)

    return [
        ConsumerSpec(DIRECTORY_EVENTS, ("directory.#",), on_directory_event, prefetch=settings.consumer_prefetch),
        ConsumerSpec(REPORT_EVENTS, ("moderation.report.*",), on_report, prefetch=settings.consumer_prefetch),
    ]
