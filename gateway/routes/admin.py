"""Administration (messaging blocks F2, communication rules F3, privileges F27), the organisation tree, F4."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from gateway import schemas
from gateway.web import call, takes

bp = Blueprint("admin", __name__, url_prefix="/api/v1")


@bp.post("/admin/messaging-blocks")
@takes(schemas.MessagingBlockIn)
def create_messaging_block(body: schemas.MessagingBlockIn) -> Any:
    """Turn messaging off for one user, organisation or course: 201, or 200 with the block that exists."""
    result = call("directory", "blocks.create", body.model_dump(exclude_none=True))
    return result["block"], 201 if result["created"] else 200


@bp.get("/admin/messaging-blocks")
def list_messaging_blocks() -> Any:
    """The messaging blocks in the caller's organisations, newest first."""
    return call("directory", "blocks.list")


@bp.delete("/admin/messaging-blocks/<block_id>")
def delete_messaging_block(block_id: str) -> Any:
    """Turn messaging back on: 204."""
    call("directory", "blocks.delete", {"block_id": block_id})
    return "", 204


@bp.get("/admin/communication-rules/<org_id>")
def get_communication_rule(org_id: str) -> Any:
    """The rule set on an organisation and the one its students get."""
    return call("directory", "rules.get", {"org_id": org_id})


@bp.put("/admin/communication-rules/<org_id>")
@takes(schemas.CommunicationRuleIn)
def set_communication_rule(org_id: str, body: schemas.CommunicationRuleIn) -> Any:
    """Set whom an organisation's students may start conversations with (null: inherit)."""
    return call("directory", "rules.set", {"org_id": org_id, **body.model_dump()})


@bp.post("/admin/privileges")
@takes(schemas.PrivilegeIn)
def grant_privilege(body: schemas.PrivilegeIn) -> Any:
    """Grant an administrator a privilege (mass_messaging)."""
    return call("directory", "privileges.grant", body.model_dump())


@bp.delete("/admin/privileges/<user_id>/<privilege>")
def revoke_privilege(user_id: str, privilege: str) -> Any:
    """Revoke a privilege: 204."""
    call("directory", "privileges.revoke", {"user_id": user_id, "privilege": privilege})
    return "", 204


@bp.get("/orgs")
def org_tree() -> Any:
    """The organisation tree the caller may see: theirs, those above and those under."""
    return call("directory", "orgs.tree")


@bp.get("/users/<user_id>/relationship")
def relationship(user_id: str) -> Any:
    """The courses and projects the caller shares with a user, and each one's role there (F4)."""
    return call("directory", "users.relationship", {"user_id": user_id})
