"""Moderation rules as plain functions over plain data: report texts, transitions, views, audit filters."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from shared.errors import AppError, validation

MAX_REASON_CHARS = 1_000
STATES = ("open", "withdrawn", "resolved")
# What the audit log records (F26): report transitions, moderator actions, safeguarding settings.
AUDIT_ACTIONS = (
    "report.created",
    "report.withdrawn",
    "report.resolved",
    "message.deleted",
    "participant.removed",
    "conversation.closed",
    "conversation.reopened",
    "conversation.deleted",
    "conversation.restored",
    "safeguarding.changed",
)
_CLOSED_TEXT = {"withdrawn": "This report was withdrawn.", "resolved": "This report was already resolved."}


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value is not None else None


def check_id(raw: Any, field: str) -> str:
    if not isinstance(raw, str) or not raw or len(raw) > 200:
        raise validation(f"{field} must be an id.", field=field)
    return raw


def check_uuid(raw: Any, field: str) -> str:
    try:
        return str(uuid.UUID(check_id(raw, field)))
    except ValueError:
        raise validation(f"{field} is not a valid id.", field=field) from None


def check_target(message_id: Any, conversation_id: Any) -> tuple[str | None, str | None]:
    """Exactly one of a message or a conversation, each an id."""
    if (message_id is None) == (conversation_id is None):
        raise validation("Report either a message or a conversation.", field="message_id")
    if message_id is not None:
        return check_id(message_id, "message_id"), None
    return None, check_id(conversation_id, "conversation_id")


def check_reason(raw: Any) -> str:
    """What the reporter tells the staff member: required, at most MAX_REASON_CHARS."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise validation("Tell us what is wrong.", field="reason")
    if not isinstance(raw, str):
        raise validation("The reason must be text.", field="reason")
    if len(raw) > MAX_REASON_CHARS:
        raise validation(f"A reason can be at most {MAX_REASON_CHARS:,} characters.", field="reason")
    return raw.strip()


def check_note(raw: Any) -> str:
    """An optional closing note when resolving."""
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise validation("The note must be text.", field="note")
    if len(raw) > MAX_REASON_CHARS:
        raise validation(f"A note can be at most {MAX_REASON_CHARS:,} characters.", field="note")
    return raw.strip()


def check_open(state: str) -> None:
    """A withdrawn or resolved report is done: acting on it again changes nothing and says why."""
    if state != "open":
        raise AppError("not_allowed", _CLOSED_TEXT[state], {"state": state})


def check_withdraw(report: dict[str, Any], caller_id: str) -> None:
    if report["reporter_id"] != caller_id:
        raise AppError("forbidden", "Only the person who made a report can withdraw it.")
    check_open(report["state"])


def check_resolve(report: dict[str, Any], caller_id: str) -> None:
    if caller_id not in {r["user_id"] for r in report["recipients"]}:
        raise AppError("forbidden", "Only the staff a report was sent to can resolve it.")
    check_open(report["state"])


def check_state_filter(raw: Any) -> str | None:
    if raw in (None, "", "all"):
        return None
    if raw not in STATES:
        raise validation("state must be open, withdrawn, resolved or all.", field="state")
    return str(raw)


def check_time(raw: Any, field: str) -> datetime | None:
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise validation(f"{field} must be a date and time (ISO 8601).", field=field)
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise validation(f"{field} must be a date and time (ISO 8601).", field=field) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def audit_filters(params: dict[str, Any]) -> dict[str, Any]:
    """The audit log's filters from a request; unknown actions and bad times are refused."""
    filters: dict[str, Any] = {}
    for field in ("actor_id", "subject_id"):
        if params.get(field) not in (None, ""):
            filters[field] = check_id(params[field], field)
    for field in ("conversation_id", "report_id", "message_id"):
        if params.get(field) not in (None, ""):
            filters[field] = check_uuid(params[field], field)
    action = params.get("action")
    if action not in (None, ""):
        if action not in AUDIT_ACTIONS:
            raise validation("Unknown action.", field="action", allowed=list(AUDIT_ACTIONS))
        filters["action"] = action
    since, until = check_time(params.get("since"), "since"), check_time(params.get("until"), "until")
    if since is not None:
        filters["since"] = since
    if until is not None:
        filters["until"] = until
    if since is not None and until is not None and since > until:
        raise validation("since must be before until.", field="since")
    return filters


def report_view(row: Any, recipients: list[dict[str, Any]]) -> dict[str, Any]:
    """A report as its reporter and the staff it went to see it; other participants never see it."""
    return {
        "id": str(row.id),
        "kind": row.kind,
        "state": row.state,
        "reason": row.reason,
        "conversation_id": str(row.conversation_id),
        "conversation_type": row.conversation_type,
        "message_id": str(row.message_id) if row.message_id else None,
        "subject": {"id": row.subject_id, "name": row.subject_name} if row.subject_id else None,
        "reporter": {"id": row.reporter_id, "name": row.reporter_name} if row.reporter_id else None,
        "recipients": recipients,
        "matched": list(row.matched),
        "created_at": iso(row.created_at),
        "closed_at": iso(row.closed_at),
        "closed_by": {"id": row.closed_by, "name": row.closed_by_name} if row.closed_by else None,
        "note": row.note,
    }


def audit_view(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "at": iso(row.at),
        "action": row.action,
        "actor": {"id": row.actor_id, "name": row.actor_name, "role": row.actor_role} if row.actor_id else None,
        "report_ids": [str(r) for r in row.report_ids],
        "conversation_id": str(row.conversation_id) if row.conversation_id else None,
        "message_id": str(row.message_id) if row.message_id else None,
        "subject_id": row.subject_id,
        "details": row.details,
    }
