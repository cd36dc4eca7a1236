"""Reports and the audit log in the moderation database.

Named by contract: `access_*` returns what the caller may see or raises `not_found`;
`do_*` changes state and records its audit entry and its events in the same transaction.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import Connection, text

from services.moderation import domain
from shared.cursor import Cursors, check_limit, decode_time_id, invalid_cursor, next_time_id
from shared.errors import AppError, as_uuid, not_found
from shared.outbox import add_event

SERVICE = "moderation"


def _recipients(session: Connection, report_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]]:
    rows = session.execute(
        text(
            "SELECT report_id, user_id, name, role FROM report_recipients WHERE report_id = ANY(:ids) "
            "ORDER BY name, user_id"
        ),
        {"ids": report_ids},
    )
    found: dict[uuid.UUID, list[dict[str, Any]]] = {i: [] for i in report_ids}
    for r in rows:
        found[r.report_id].append({"user_id": r.user_id, "name": r.name, "role": r.role})
    return found


def views(session: Connection, rows: list[Any]) -> list[dict[str, Any]]:
    recipients = _recipients(session, [r.id for r in rows])
    return [domain.report_view(r, recipients[r.id]) for r in rows]


def load(session: Connection, report_id: Any, *, lock: bool = False) -> dict[str, Any] | None:
    row = session.execute(
        text("SELECT * FROM reports WHERE id = :id" + (" FOR UPDATE" if lock else "")),
        {"id": as_uuid(report_id, "report")},
    ).first()
    if row is None:
        return None
    view = views(session, [row])[0]
    return {**view, "reporter_id": row.reporter_id, "org_ids": list(row.org_ids)}


def access_report(session: Connection, caller_id: str, report_id: Any, *, lock: bool = False) -> dict[str, Any]:
    """A report the caller made or received, or `not_found` (others' reports are hidden alike)."""
    report = load(session, report_id, lock=lock)
    if report is None or caller_id not in _parties(report):
        raise not_found("report")
    return report


def _parties(report: dict[str, Any]) -> set[str]:
    return {r["user_id"] for r in report["recipients"]} | ({report["reporter_id"]} if report["reporter_id"] else set())


def public(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in ("reporter_id", "org_ids")}


def open_duplicate(session: Connection, reporter_id: str, conversation_id: str, message_id: str | None) -> bool:
    return (
        session.execute(
            text(
                "SELECT 1 FROM reports WHERE reporter_id = :me AND conversation_id = :cid AND state = 'open' "
                "AND message_id IS NOT DISTINCT FROM CAST(:mid AS uuid)"
            ),
            {"me": reporter_id, "cid": conversation_id, "mid": message_id},
        ).first()
        is not None
    )


def do_create(
    session: Connection,
    *,
    kind: str,
    reporter: dict[str, Any] | None,
    target: dict[str, Any],
    recipients: list[dict[str, Any]],
    reason: str,
    org_ids: list[str],
    matched: list[str] | None = None,
) -> dict[str, Any] | None:
    """Store a report and tell the staff it went to; None when a flag already reported this message."""
    if reporter is not None and open_duplicate(
        session, reporter["id"], target["conversation_id"], target["message_id"]
    ):
        raise AppError("not_allowed", "You have already reported this. Your report is open.", {"action": "report"})
    row = session.execute(
        text(
            """
            INSERT INTO reports (kind, reporter_id, reporter_name, conversation_id, conversation_type, message_id,
                                 subject_id, subject_name, reason, matched, org_ids)
            VALUES (:kind, :reporter_id, :reporter_name, :cid, :ctype, :mid, :subject_id, :subject_name, :reason,
                    :matched, :org_ids)
            ON CONFLICT DO NOTHING
            RETURNING *
            """
        ),
        {
            "kind": kind,
            "reporter_id": reporter["id"] if reporter else None,
            "reporter_name": reporter["name"] if reporter else None,
            "cid": target["conversation_id"],
            "ctype": target["conversation_type"],
            "mid": target["message_id"],
            "subject_id": target.get("sender_id"),
            "subject_name": target.get("sender_name"),
            "reason": reason,
            "matched": matched or [],
            "org_ids": org_ids,
        },
    ).first()
    if row is None:
        if reporter is not None:  # a twin request won the unique index a moment ago
            raise AppError("not_allowed", "You have already reported this. Your report is open.", {"action": "report"})
        return None
    session.execute(
        text("INSERT INTO report_recipients (report_id, user_id, name, role) VALUES (:rid, :uid, :name, :role)"),
        [{"rid": row.id, "uid": r["user_id"], "name": r["name"], "role": r["role"]} for r in recipients],
    )
    report = views(session, [row])[0]
    audit(
        session,
        "report.created",
        actor=reporter,
        report_ids=[report["id"]],
        conversation_id=target["conversation_id"],
        message_id=target["message_id"],
        subject_id=target.get("sender_id"),
        org_ids=org_ids,
        details={"kind": kind, "recipient_ids": [r["user_id"] for r in recipients]},
    )
    add_event(
        session, SERVICE, "moderation.report.created", {"report": report}, audience=[r["user_id"] for r in recipients]
    )
    return report


def do_close(session: Connection, caller: dict[str, Any], report_id: Any, state: str, note: str = "") -> dict[str, Any]:
    """Withdraw (the reporter) or resolve (a recipient) an open report; its reader access ends with it."""
    report = access_report(session, caller["id"], report_id, lock=True)
    if state == "withdrawn":
        domain.check_withdraw(report, caller["id"])
    else:
        domain.check_resolve(report, caller["id"])
    row = session.execute(
        text(
            "UPDATE reports SET state = :state, closed_at = now(), closed_by = :by, closed_by_name = :name, "
            "note = :note WHERE id = :id RETURNING *"
        ),
        {"state": state, "by": caller["id"], "name": caller["name"], "note": note, "id": report["id"]},
    ).one()
    closed = views(session, [row])[0]
    audit(
        session,
        f"report.{state}",
        actor=caller,
        report_ids=[closed["id"]],
        conversation_id=closed["conversation_id"],
        message_id=closed["message_id"],
        subject_id=row.subject_id,
        org_ids=list(row.org_ids),
        details={},
    )
    add_event(session, SERVICE, "moderation.report.updated", {"report": closed}, audience=sorted(_parties(report)))
    return closed


def list_reports(
    session: Connection, cursors: Cursors, caller_id: str, state: str | None, cursor: Any, limit: Any
) -> dict[str, Any]:
    """Reports the caller made or received, newest first."""
    limit = check_limit(limit)
    position = decode_time_id(cursors, cursor, caller_id, "reports")
    params: dict[str, Any] = {"me": caller_id, "n": limit + 1, "state": state}
    where = (
        "(r.reporter_id = :me OR EXISTS (SELECT 1 FROM report_recipients t WHERE t.report_id = r.id "
        "AND t.user_id = :me)) AND (CAST(:state AS text) IS NULL OR r.state = :state)"
    )
    if position:
        params["at"], params["after"] = position
        where += " AND (r.created_at, r.id) < (:at, :after)"
    rows = session.execute(
        text(f"SELECT r.* FROM reports r WHERE {where} ORDER BY r.created_at DESC, r.id DESC LIMIT :n"), params
    ).all()
    items = views(session, rows[:limit])
    next_cursor = next_time_id(cursors, rows, limit, caller_id, "reports", "created_at")
    return {"items": items, "next_cursor": next_cursor}


# The audit log --------------------------------------------------------------------------------


def audit(
    session: Connection,
    action: str,
    *,
    actor: dict[str, Any] | None,
    report_ids: list[str],
    conversation_id: str | None,
    message_id: str | None = None,
    subject_id: str | None = None,
    org_ids: list[str],
    details: dict[str, Any],
    event_id: str | None = None,
) -> bool:
    """Append one entry (once per source event); entries name things by id and never hold content."""
    row = session.execute(
        text(
            """
            INSERT INTO audit_log (action, actor_id, actor_name, actor_role, report_ids, conversation_id, message_id,
                                   subject_id, org_ids, details, event_id)
            VALUES (:action, :actor_id, :actor_name, :actor_role, CAST(:report_ids AS uuid[]), :cid, :mid,
                    :subject_id, :org_ids, CAST(:details AS jsonb), :event_id)
            ON CONFLICT (event_id) DO NOTHING RETURNING id
            """
        ),
        {
            "action": action,
            "actor_id": actor["id"] if actor else None,
            "actor_name": actor["name"] if actor else None,
            "actor_role": actor.get("role") if actor else None,
            "report_ids": report_ids,
            "cid": conversation_id,
            "mid": message_id,
            "subject_id": subject_id,
            "org_ids": org_ids,
            "details": json.dumps(details),
            "event_id": event_id,
        },
    ).first()
    return row is not None


_AUDIT_FILTERS = {
    "actor_id": "a.actor_id = :actor_id",
    "subject_id": "a.subject_id = :subject_id",
    "conversation_id": "a.conversation_id = CAST(:conversation_id AS uuid)",
    "message_id": "a.message_id = CAST(:message_id AS uuid)",
    "report_id": "a.report_ids @> ARRAY[CAST(:report_id AS uuid)]",
    "action": "a.action = :action",
    "since": "a.at >= :since",
    "until": "a.at < :until",
}


def list_audit(
    session: Connection,
    cursors: Cursors,
    caller_id: str,
    scope: list[str],
    filters: dict[str, Any],
    cursor: Any,
    limit: Any,
) -> dict[str, Any]:
    """Entries about the organisations the administrator governs, newest first, filtered."""
    limit = check_limit(limit)
    position = cursors.decode(cursor, caller_id, "audit")
    where = ["a.org_ids && CAST(:scope AS text[])"] + [_AUDIT_FILTERS[k] for k in filters]
    params: dict[str, Any] = {"scope": scope, "n": limit + 1, **filters}
    if position:
        try:
            params["before"] = int(position[0])
        except (ValueError, TypeError, IndexError):
            raise invalid_cursor() from None
        where.append("a.id < :before")
    rows = session.execute(
        text(f"SELECT a.* FROM audit_log a WHERE {' AND '.join(where)} ORDER BY a.id DESC LIMIT :n"), params
    ).all()
    items = [domain.audit_view(r) for r in rows[:limit]]
    next_cursor = cursors.encode(caller_id, "audit", [rows[limit - 1].id]) if len(rows) > limit else None
    return {"items": items, "next_cursor": next_cursor}
