"""The event envelope and the one catalogue of event types.

Routing key = event type = `<service>.<entity>.<verb>` (a past-tense fact).
`audience` lists the user ids who must see the event in real time (None: nobody).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    fields: tuple[str, ...]
    description: str
    client_event: str | None = None  # the Socket.IO event name, when clients see it


CATALOGUE: dict[str, EventType] = {
    e.name: e
    for e in (
        EventType(
            "directory.user.upserted",
            ("user_id", "name", "given_name", "family_name", "role", "title", "org_ids", "enabled"),
            "A roster user was created or changed.",
        ),
        EventType("directory.user.removed", ("user_id",), "A roster user was removed."),
        EventType(
            "directory.enrolment.added",
            ("kind", "group_id", "user_id", "role"),
            "A user joined a course (kind=course) or a project (kind=project).",
        ),
        EventType(
            "directory.enrolment.removed",
            ("kind", "group_id", "user_id"),
            "A user left a course or a project.",
        ),
        EventType(
            "directory.roster.imported",
            ("counts",),
            "A roster bundle was applied; counts per entity of what changed.",
        ),
        EventType(
            "directory.messaging.changed",
            ("user_ids", "course_ids", "messaging_enabled"),
            "A messaging block was created or removed: the users whose effective state changed (an "
            "organisation block lists its members; at most 1,000 ids an event) or the course, and the new state.",
        ),
        EventType(
            "directory.rule.changed",
            ("org_id", "student_policy"),
            "An organisation's communication rule for students was set (`student_policy` null: removed, "
            "the organisation inherits again).",
        ),
        EventType(
            "conversations.conversation.created",
            ("conversation",),
            "A conversation came into being; `conversation` is its summary.",
            "conversation.created",
        ),
        EventType(
            "conversations.conversation.updated",
            ("conversation_id", "changes"),
            "A conversation was renamed, closed, reopened, deleted or restored; `changes` holds the new values.",
            "conversation.updated",
        ),
        EventType(
            "conversations.participant.added",
            ("conversation_id", "participant"),
            "Someone joined a conversation; the audience includes them.",
            "participant.added",
        ),
        EventType(
            "conversations.participant.removed",
            ("conversation_id", "user_id", "reason"),
            "Someone left or was removed (reason: left, removed, unenrolled, report_closed: their report access "
            "ended); the audience includes them.",
            "participant.removed",
        ),
        EventType(
            "conversations.message.updated",
            ("message", "conversation_id"),
            "A message was edited.",
            "message.updated",
        ),
        EventType(
            "conversations.message.deleted",
            ("message", "conversation_id"),
            "A message was deleted; `message` carries `deleted` and no content.",
            "message.deleted",
        ),
        EventType(
            "conversations.unread.updated",
            ("conversation_id", "unread_count", "unread_total"),
            "A user's unread count changed by their own doing (read, mark unread); audience: that user.",
            "unread.updated",
        ),
        EventType(
            "conversations.files.attached",
            ("message_id", "conversation_id", "attachment_ids"),
            "A stored message carries these files (sent or forwarded): for attachments, which keeps them.",
        ),
        EventType(
            "conversations.files.released",
            ("message_id", "attachment_ids"),
            "A message that carried files was deleted: for attachments, which destroys files no message carries.",
        ),
        EventType(
            "conversations.moderation.recorded",
            (
                "action",
                "actor_id",
                "actor_name",
                "actor_role",
                "conversation_id",
                "conversation_type",
                "message_id",
                "user_id",
                "report_ids",
                "through_report",
            ),
            "A teacher or administrator moderated a conversation (action: message.deleted, participant.removed, "
            "conversation.closed, .reopened, .deleted, .restored), with the open reports that let them in; for the "
            "audit log. Never carries content.",
        ),
        EventType(
            "moderation.report.created",
            ("report",),
            "An abuse report was made (by a person, or automatically by a safeguarding flag); audience: the staff it "
            "was sent to, who see it as `report.created`.",
            "report.created",
        ),
        EventType(
            "moderation.report.updated",
            ("report",),
            "A report was withdrawn or resolved (`report.state`); audience: its reporter and the staff it was sent to.",
            "report.updated",
        ),
        EventType(
            "mass_messaging.job.progress",
            ("job",),
            "A mass message was queued, planned, delivered a chunk, finished or was cancelled; `job` is its state "
            "and counts. Audience: its sender.",
            "mass_message.progress",
        ),
        EventType(
            "conversations.message.created",
            ("message", "conversation_id"),
            "A message was stored; `message` is the message as API.md shows it.",
            "message.created",
        ),
    )
}


# The sync service republishes each client-visible event, with its log position, under this prefix.
LOGGED_PREFIX = "logged."


def client_event(type_: str) -> str | None:
    """The Socket.IO event name of a type; None when clients never see it, or do not know it yet."""
    spec = CATALOGUE.get(type_)
    return spec.client_event if spec is not None else None


def client_types() -> tuple[str, ...]:
    """Every event type clients see (routing key = event type)."""
    return tuple(sorted(name for name, spec in CATALOGUE.items() if spec.client_event))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Envelope:
    type: str
    data: dict[str, Any]
    producer: str
    audience: list[str] | None = None
    version: int = 1
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    occurred_at: str = field(default_factory=_now)
    # The event's position in the change log, once the sync service has logged it.
    seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        raw = {
            "id": self.id,
            "type": self.type,
            "version": self.version,
            "occurred_at": self.occurred_at,
            "producer": self.producer,
            "audience": self.audience,
            "data": self.data,
        }
        if self.seq is not None:
            raw["seq"] = self.seq
        return raw

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), default=str)

    @classmethod
    def from_json(cls, body: bytes | str) -> Envelope:
        """Parse a message body; ValueError for anything that is not an envelope, whatever its shape."""
        try:
            return cls.from_dict(json.loads(body))
        except ValueError:
            raise
        except Exception as exc:  # noqa: BLE001  (a list, a string, 1e400, deep nesting: all just "not an envelope")
            raise ValueError(f"not an event envelope: {type(exc).__name__}") from exc

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Envelope:
        """Rebuild from the wire; raises ValueError on anything not shaped like an envelope."""
        try:
            audience = raw.get("audience")
            if audience is not None and not isinstance(audience, list):
                raise ValueError("audience must be a list or null")
            if not isinstance(raw["data"], dict):
                raise ValueError("data must be an object")
            seq = raw.get("seq")
            if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool) or seq < 1):
                raise ValueError("seq must be a positive integer")
            return cls(
                type=str(raw["type"]),
                data=raw["data"],
                producer=str(raw.get("producer", "")),
                audience=[str(a) for a in audience] if audience is not None else None,
                version=int(raw.get("version", 1)),
                id=str(uuid.UUID(str(raw["id"]))),
                occurred_at=str(raw.get("occurred_at", "")),
                seq=seq,
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an event envelope: {exc}") from exc


def make_event(type_: str, data: dict[str, Any], *, producer: str, audience: list[str] | None = None) -> Envelope:
    """Build an envelope for a catalogued type; an unknown type or a missing field is a programming error."""
    spec = CATALOGUE.get(type_)
    if spec is None:
        raise KeyError(f"event type {type_!r} is not in the catalogue")
    missing = [f for f in spec.fields if f not in data]
    if missing:
        raise KeyError(f"event {type_} lacks fields {missing}")
    return Envelope(type=type_, data=data, producer=producer, audience=audience)


# Personal parts ------------------------------------------------------------------------------
# One event goes to many people, but a few fields may differ between them (each one's own
# `can`, unread count or name for a conversation). The event then holds the value most of
# its audience shares, plus `personal`: groups of users with what differs for them, merged
# one level deep into the data each of them receives. Nobody receives another's part.

PERSONAL = "personal"


def _difference(value: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if common.get(k, _MISSING) != v}


_MISSING = object()


def with_personal(key: str, views: dict[str, dict[str, Any]], data: dict[str, Any]) -> dict[str, Any]:
    """`data` with `data[key]` set to what most of `views` (user id -> that user's view) share,
    and a `personal` entry holding the rest; `views` must not be empty and all have the same keys."""
    encoded = {user: json.dumps(view, sort_keys=True, default=str) for user, view in views.items()}
    counts: dict[str, int] = {}
    for text in encoded.values():
        counts[text] = counts.get(text, 0) + 1
    common_text = max(counts, key=lambda t: counts[t])
    common = json.loads(common_text)
    groups: dict[str, list[str]] = {}
    for user, text in encoded.items():
        if text != common_text:
            diff = _difference(views[user], common)
            groups.setdefault(json.dumps(diff, sort_keys=True, default=str), []).append(user)
    out = {**data, key: common}
    if groups:
        out[PERSONAL] = [{"users": sorted(users), "data": {key: json.loads(diff)}} for diff, users in groups.items()]
    return out


def personal_index(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """User id -> their personal part, for an event delivered to many users."""
    index: dict[str, dict[str, Any]] = {}
    for group in data.get(PERSONAL) or ():
        for user in group["users"]:
            index[user] = group["data"]
    return index


def for_user(data: dict[str, Any], part: dict[str, Any] | None) -> dict[str, Any]:
    """The data one user receives: the shared data with their personal part merged in."""
    out = {k: v for k, v in data.items() if k != PERSONAL}
    for key, value in (part or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def client_view(envelope: Envelope, part: dict[str, Any] | None) -> dict[str, Any]:
    """An event as one client receives it (pushed or from /sync), with that user's personal part."""
    return {
        **for_user(envelope.data, part),
        "event_id": envelope.id,
        "occurred_at": envelope.occurred_at,
    }


def part_for(data: dict[str, Any], user_id: str) -> dict[str, Any] | None:
    """One user's personal part of an event, None when they have none."""
    for group in data.get(PERSONAL) or ():
        if user_id in group["users"]:
            return group["data"]
    return None
