"""Mass messaging (F27) as the directory answers it: who may send, and to whom it goes.

An administrator holding the `mass_messaging` privilege sends one-way messages shown as from one
of the organisations they govern, to the members of organisations they govern and of every
organisation under those, filtered by role. The sender is never in their own audience.

`authorise` checks the whole request and is shared by both RPC methods, so a page of the
audience is only ever read for a request that would be authorised now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from services.directory import policy
from services.directory.admin import forbidden, has_privilege
from services.directory.contacts import access_caller
from services.directory.facts import load_expanded_blocks, load_tree
from services.directory.policy import Org, user_blocked
from shared.errors import not_found, validation

PRIVILEGE = "mass_messaging"
ROLES: tuple[str, ...] = ("admin", "guardian", "staff", "student", "teacher")
MAX_ORGS = 100
DEFAULT_PAGE = 5000
MAX_PAGE = 10_000
MAX_CURSOR = 200

NOT_ADMIN = "Only administrators can send mass messages."
NO_PRIVILEGE = "You need the mass messaging privilege to do this."
OUT_OF_SCOPE = "You can only send mass messages to your own organisations."


# --- parameter checks, for handlers._parse ---------------------------------------------------------


def roles_param(value: Any, name: str) -> list[str]:
    """A non-empty list of platform roles, deduplicated and sorted."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise validation(f"{name} must be a list of roles.", field=name, allowed=list(ROLES))
    if not value:
        raise validation(f"Choose at least one of {', '.join(ROLES)}.", field=name, allowed=list(ROLES))
    unknown = sorted(set(value) - set(ROLES))
    if unknown:
        raise validation(
            f"Unknown role {unknown[0]!r}: {name} may hold {', '.join(ROLES)}.", field=name, allowed=list(ROLES)
        )
    return sorted(set(value))


def after_param(value: Any, name: str) -> str | None:
    """The paging cursor: the last user id of the previous page, or null for the first."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_CURSOR:
        raise validation(f"{name} must be a user id or null.", field=name)
    return value


def limit_param(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAGE:
        raise validation(f"{name} must be a whole number from 1 to {MAX_PAGE}.", field=name)
    return value


# --- authorisation -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Audience:
    """An authorised request: who sends, as which organisation, to whom."""

    caller_id: str
    sender: Org
    org_ids: list[str]  # as asked, deduplicated, in the order given
    roles: list[str]  # sorted
    scope: list[str]  # org_ids and every organisation under them, sorted


def authorise(
    session: Connection, caller_id: str, org_id: str, org_ids: list[str] | None, roles: list[str] | None
) -> Audience:
    """The request checked: an administrator holding the privilege, sending as and to organisations they govern.

    Refusals, in this order: `validation_failed` (an empty list of organisations),
    `unauthenticated` (not in the roster), `forbidden` (not an administrator; no privilege),
    `not_found` (an unknown organisation), `forbidden` (an organisation they do not govern).
    """
    targets = list(dict.fromkeys([org_id] if org_ids is None else org_ids))
    if not targets:
        raise validation("Choose at least one organisation.", field="org_ids")
    me = access_caller(session, caller_id)
    if me.role != "admin":
        raise forbidden(NOT_ADMIN)
    if not has_privilege(session, me.id, PRIVILEGE)["granted"]:
        raise forbidden(NO_PRIVILEGE)
    tree = load_tree(session)
    asked = [org_id, *targets]
    if any(o not in tree.orgs for o in asked):
        raise not_found("organisation")
    governed = policy.admin_scope(me, tree)
    if any(o not in governed for o in asked):
        raise forbidden(OUT_OF_SCOPE)
    return Audience(
        caller_id=me.id,
        sender=tree.orgs[org_id],
        org_ids=targets,
        roles=list(ROLES) if roles is None else sorted(set(roles)),
        scope=sorted(tree.below(targets)),
    )


# --- the audience --------------------------------------------------------------------------------

# Index-friendly: `&&` can use the GIN index on users.org_ids (0001), the cursor the primary key.
_COUNT = text(
    """
    SELECT count(*) FROM users
    WHERE org_ids && CAST(:scope AS text[]) AND role = ANY(:roles) AND sourced_id <> :me
    """
)
_PAGE = text(
    """
    SELECT sourced_id, org_ids FROM users
    WHERE org_ids && CAST(:scope AS text[]) AND role = ANY(:roles) AND sourced_id <> :me
      AND sourced_id > :after
    ORDER BY sourced_id
    LIMIT :limit
    """
)


def _filter(audience: Audience) -> dict[str, Any]:
    return {"scope": audience.scope, "roles": audience.roles, "me": audience.caller_id}


def describe(
    session: Connection, caller_id: str, org_id: str, org_ids: list[str] | None = None, roles: list[str] | None = None
) -> dict[str, Any]:
    """`mass.authorise`: the sender as shown, the organisations and roles, and how many people it reaches."""
    audience = authorise(session, caller_id, org_id, org_ids, roles)
    size = session.execute(_COUNT, _filter(audience)).scalar_one()
    return {
        "sender": {"org_id": audience.sender.id, "name": audience.sender.name, "type": audience.sender.type},
        "org_ids": audience.org_ids,
        "roles": audience.roles,
        "audience_size": size,
    }


def members(
    session: Connection,
    caller_id: str,
    org_id: str,
    org_ids: list[str] | None = None,
    roles: list[str] | None = None,
    *,
    after: str | None = None,
    limit: int = DEFAULT_PAGE,
) -> dict[str, Any]:
    """`mass.audience`: one page of the members by user id, each with their effective messaging state.

    Authorised afresh on every page. Then two queries: the members, and the blocks that apply
    to them (organisation blocks already expanded downwards). `next` is the cursor for the
    following page, null after the last.
    """
    audience = authorise(session, caller_id, org_id, org_ids, roles)
    # The empty string sorts before every id, so the first page needs no statement of its own.
    rows = session.execute(_PAGE, {**_filter(audience), "after": after or "", "limit": limit + 1}).all()
    more = len(rows) > limit
    rows = rows[:limit]
    if not rows:
        return {"members": [], "next": None}
    blocks, tree = load_expanded_blocks(session, [r.sourced_id for r in rows])
    return {
        "members": [
            {"user_id": r.sourced_id, "messaging_enabled": not user_blocked(r.sourced_id, r.org_ids, blocks, tree)}
            for r in rows
        ],
        "next": rows[-1].sourced_id if more else None,
    }
