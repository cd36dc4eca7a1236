"""Moderation (F23–F26): abuse reports, the audit log, safeguarding lists, blocking in a 1:1."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from gateway import schemas
from gateway.web import call, reads, takes

bp = Blueprint("moderation", __name__, url_prefix="/api/v1")


@bp.get("/reports/recipients")
@reads("message_id", "conversation_id")
def report_recipients(params: dict[str, Any]) -> Any:
    """The teachers and administrators the caller may send a report about this message or conversation to."""
    return call("moderation", "reports.recipients", params)


@bp.post("/reports")
@takes(schemas.ReportIn)
def create_report(body: schemas.ReportIn) -> Any:
    """Report a message of someone else, or a group conversation, to one of the staff offered."""
    return call("moderation", "reports.create", body.model_dump()), 201


@bp.get("/reports")
@reads("state", "cursor", "limit")
def list_reports(params: dict[str, Any]) -> Any:
    """Reports the caller made or received, newest first (`state`: open, withdrawn, resolved, all)."""
    return call("moderation", "reports.list", params)


@bp.get("/reports/<report_id>")
def get_report(report_id: str) -> Any:
    """One report the caller made or received."""
    return call("moderation", "reports.get", {"report_id": report_id})


@bp.post("/reports/<report_id>/withdraw")
def withdraw_report(report_id: str) -> Any:
    """The reporter takes their report back; the staff member's access through it ends."""
    return call("moderation", "reports.withdraw", {"report_id": report_id})


@bp.post("/reports/<report_id>/resolve")
@takes(schemas.ResolveIn)
def resolve_report(report_id: str, body: schemas.ResolveIn) -> Any:
    """The staff member it was sent to closes the report, with an optional note; access through it ends."""
    return call("moderation", "reports.resolve", {"report_id": report_id, **body.model_dump()})


@bp.get("/admin/audit")
@reads(
    "actor_id",
    "subject_id",
    "conversation_id",
    "message_id",
    "report_id",
    "action",
    "since",
    "until",
    "cursor",
    "limit",
)
def audit_log(params: dict[str, Any]) -> Any:
    """Moderator actions and report transitions in the administrator's organisations, newest first."""
    return call("moderation", "audit.list", params)


@bp.get("/admin/safeguarding/<org_id>")
def get_safeguarding(org_id: str) -> Any:
    """An organisation's safeguarding words and phrases, and its designated safeguarding leads."""
    return call("moderation", "safeguarding.get", {"org_id": org_id})


@bp.put("/admin/safeguarding/<org_id>")
@takes(schemas.SafeguardingIn)
def set_safeguarding(org_id: str, body: schemas.SafeguardingIn) -> Any:
    """Replace an organisation's safeguarding list and leads (administrators of that organisation)."""
    return call("moderation", "safeguarding.set", {"org_id": org_id, **body.model_dump()})


@bp.post("/conversations/<conversation_id>/<any(block, unblock):action>")
def block(conversation_id: str, action: str) -> Any:
    """A student blocks (or unblocks) the other person of a 1:1 conversation."""
    return call("conversations", f"conversations.{action}", {"conversation_id": conversation_id})
