"""Mass-messaging rules as plain functions: requests, chunks, cancelling, views."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.errors import AppError, not_found, validation

ROLES = ("student", "teacher", "admin", "guardian", "staff")
MAX_BODY_CHARS = 10_000
MAX_ORGS = 100
UNFINISHED = ("queued", "running")


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value is not None else None


def check_body(raw: Any) -> str:
    if not isinstance(raw, str):
        raise validation("The message must be text.", field="body")
    if not raw.strip():
        raise validation("Write the message to send.", field="body")
    if len(raw) > MAX_BODY_CHARS:
        raise validation(f"A message can be at most {MAX_BODY_CHARS:,} characters.", field="body")
    return raw


def check_roles(raw: Any) -> list[str]:
    """`everyone` (or nothing) means every role; otherwise a list of role groups."""
    if raw is None or raw == "everyone" or raw == ["everyone"]:
        return list(ROLES)
    if not isinstance(raw, list) or not raw or not all(isinstance(r, str) for r in raw):
        raise validation("Choose everyone or at least one role.", field="roles", allowed=list(ROLES))
    unknown = [r for r in raw if r not in ROLES]
    if unknown:
        raise validation("Unknown role.", field="roles", unknown=unknown, allowed=list(ROLES))
    return sorted(set(raw))


def check_orgs(org_id: Any, org_ids: Any) -> tuple[str, list[str]]:
    if not isinstance(org_id, str) or not org_id or len(org_id) > 200:
        raise validation("Choose the organisation to send as.", field="org_id")
    if org_ids is None:
        return org_id, [org_id]
    if (
        not isinstance(org_ids, list)
        or not org_ids
        or len(org_ids) > MAX_ORGS
        or not all(isinstance(o, str) and o and len(o) <= 200 for o in org_ids)
    ):
        raise validation(f"Choose 1 to {MAX_ORGS} organisations to send to.", field="org_ids")
    return org_id, list(dict.fromkeys(org_ids))


def chunks(ids: list[str], size: int) -> list[list[str]]:
    """The recipients in chunks of `size` (MASS_CHUNK_SIZE, 1,000 by default: see shared/config.py)."""
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def check_cancel(job: dict[str, Any], caller_id: str) -> None:
    """Only the sender cancels, and only a job still going; others' jobs are not found."""
    if job["sender_id"] != caller_id:
        raise not_found("mass message")
    if job["state"] not in UNFINISHED:
        raise AppError(
            "not_allowed", f"This mass message has already {job['state']}.", {"action": "cancel", "state": job["state"]}
        )


def job_view(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "state": row.state,
        "sender": {"org_id": row.org_id, "name": row.org_name},
        "org_ids": list(row.org_ids),
        "roles": list(row.roles),
        "body": row.body,
        "audience": row.audience,
        "delivered": row.delivered,
        "skipped": row.skipped,
        "failed": row.failed,
        "conversation_id": row.conversation_id,
        "created_at": iso(row.created_at),
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
    }


def empty_audience() -> AppError:
    return AppError(
        "validation_failed",
        "Nobody would receive this message: choose other organisations or roles.",
        {"field": "roles"},
    )
