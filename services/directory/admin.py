"""What administrators change: messaging blocks (F2), communication rules (F3), privileges (F27).

`check_*` authorises (an administrator whose organisations, or those under them, cover the
target), `do_*` changes state and records its events in the same transaction.
"""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from services.directory import policy
from services.directory.contacts import access_caller, iso, rule_view
from services.directory.facts import load_blocks, load_members_of, load_people, load_rules, load_tree
from services.directory.policy import BlockKind, OrgTree, Person
from shared.errors import AppError, not_found, validation
from shared.outbox import add_events

SERVICE = "directory"
EVENT_CHUNK = 1000
# Block changes take turns, so each one's "who changed" is computed against settled state.
_BLOCKS_LOCK = zlib.crc32(b"directory:messaging-blocks")
_TARGET_NAMES = {"user": "user", "org": "organisation", "course": "course"}


@dataclass(frozen=True, slots=True)
class Admin:
    person: Person
    tree: OrgTree
    scope: set[str]


def forbidden(message: str) -> AppError:
    return AppError("forbidden", message)


def access_admin(session: Connection, caller_id: str) -> Admin:
    """The caller as an administrator with the organisations they govern, or `forbidden`."""
    me = access_caller(session, caller_id)
    if me.role != "admin":
        raise forbidden("Only administrators can do this.")
    tree = load_tree(session)
    return Admin(me, tree, policy.admin_scope(me, tree))


def check_block_target(session: Connection, admin: Admin, kind: BlockKind, target_id: str) -> str:
    """The target's display name, once it exists and lies in the administrator's organisations."""
    name, covered = _target(session, admin, kind, target_id)
    if name is None:
        raise not_found(_TARGET_NAMES[kind])
    if not covered:
        raise forbidden("You can only manage messaging in your own organisations.")
    return name


def _target(session: Connection, admin: Admin, kind: BlockKind, target_id: str) -> tuple[str | None, bool]:
    if kind == "user":
        person = load_people(session, [target_id]).get(target_id)
        return (person.name, not admin.scope.isdisjoint(person.org_ids)) if person else (None, False)
    if kind == "org":
        org = admin.tree.orgs.get(target_id)
        return (org.name, org.id in admin.scope) if org else (None, False)
    row = session.execute(
        text("SELECT title, school_id FROM classes WHERE sourced_id = :id"), {"id": target_id}
    ).first()
    return (row.title, row.school_id in admin.scope) if row else (None, False)


def _block_view(row: Any, target_name: str | None) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "target_kind": row.target_kind,
        "target_id": row.target_id,
        "target_name": target_name,
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
    }


def messaging_events(
    kind: BlockKind, target_id: str, user_ids: list[str], *, enabled: bool
) -> list[tuple[str, dict[str, Any], list[str] | None]]:
    """`directory.messaging.changed` for a course, or for the users whose state changed, in chunks."""
    if kind == "course":
        return [
            (
                "directory.messaging.changed",
                {"user_ids": [], "course_ids": [target_id], "messaging_enabled": enabled},
                None,
            )
        ]
    return [
        (
            "directory.messaging.changed",
            {"user_ids": user_ids[i : i + EVENT_CHUNK], "course_ids": [], "messaging_enabled": enabled},
            None,
        )
        for i in range(0, len(user_ids), EVENT_CHUNK)
    ]


def _affected_people(session: Connection, tree: OrgTree, kind: BlockKind, target_id: str) -> list[Person]:
    """The people a block on this target can change."""
    if kind == "user":
        return list(load_people(session, [target_id]).values())
    if kind == "org":
        return load_members_of(session, tree.below([target_id]))
    return []


def _changed_by(session: Connection, tree: OrgTree, kind: BlockKind, target_id: str, *, adding: bool) -> list[str]:
    """Ids of the users whose effective state the block's creation (or removal) changes."""
    people = _affected_people(session, tree, kind, target_id)
    now = load_blocks(session, [p.id for p in people])
    then = policy.with_block(now, kind, target_id) if adding else policy.without_block(now, kind, target_id)
    return policy.changed_users(people, now, then, tree)


_SELECT_BLOCK = "SELECT id, target_kind, target_id, created_by, created_at FROM messaging_blocks"


def do_create_block(session: Connection, caller_id: str, kind: BlockKind, target_id: str) -> dict[str, Any]:
    """Turn messaging off for a user, an organisation or a course; a repeat returns the existing block."""
    admin = access_admin(session, caller_id)
    name = check_block_target(session, admin, kind, target_id)
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _BLOCKS_LOCK})
    existing = session.execute(
        text(f"{_SELECT_BLOCK} WHERE target_kind = :kind AND target_id = :id"), {"kind": kind, "id": target_id}
    ).first()
    if existing is not None:
        return {"block": _block_view(existing, name), "created": False}
    changed = _changed_by(session, admin.tree, kind, target_id, adding=True)
    row = session.execute(
        text(
            "INSERT INTO messaging_blocks (target_kind, target_id, created_by) VALUES (:kind, :id, :by) "
            "RETURNING id, target_kind, target_id, created_by, created_at"
        ),
        {"kind": kind, "id": target_id, "by": admin.person.id},
    ).one()
    add_events(session, SERVICE, messaging_events(kind, target_id, changed, enabled=False))
    return {"block": _block_view(row, name), "created": True}


def do_delete_block(session: Connection, caller_id: str, block_id: str) -> dict[str, Any]:
    """Turn messaging back on; only an administrator who could have created the block may."""
    admin = access_admin(session, caller_id)
    try:
        key = uuid.UUID(block_id)
    except ValueError:
        raise not_found("messaging block") from None
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _BLOCKS_LOCK})
    row = session.execute(text(f"{_SELECT_BLOCK} WHERE id = :id"), {"id": key}).first()
    if row is None:
        raise not_found("messaging block")
    name, covered = _target(session, admin, row.target_kind, row.target_id)
    # A target the roster no longer holds has nothing left to protect: any administrator may lift it.
    if name is not None and not covered:
        raise forbidden("You can only manage messaging in your own organisations.")
    changed = _changed_by(session, admin.tree, row.target_kind, row.target_id, adding=False)
    session.execute(text("DELETE FROM messaging_blocks WHERE id = :id"), {"id": key})
    add_events(session, SERVICE, messaging_events(row.target_kind, row.target_id, changed, enabled=True))
    return {"block": _block_view(row, name)}


def list_blocks(session: Connection, caller_id: str) -> dict[str, Any]:
    """The blocks on targets in the administrator's organisations, newest first."""
    admin = access_admin(session, caller_id)
    rows = session.execute(
        text(
            """
            SELECT b.id, b.target_kind, b.target_id, b.created_by, b.created_at,
                   coalesce(u.given_name || ' ' || u.family_name, o.name, c.title) AS target_name,
                   u.org_ids AS user_org_ids, c.school_id
            FROM messaging_blocks b
            LEFT JOIN users u ON b.target_kind = 'user' AND u.sourced_id = b.target_id
            LEFT JOIN orgs o ON b.target_kind = 'org' AND o.sourced_id = b.target_id
            LEFT JOIN classes c ON b.target_kind = 'course' AND c.sourced_id = b.target_id
            ORDER BY b.created_at DESC, b.id
            """
        )
    )
    covered = {
        "user": lambda r: r.user_org_ids is not None and not admin.scope.isdisjoint(r.user_org_ids),
        "org": lambda r: r.target_id in admin.scope,
        "course": lambda r: r.school_id in admin.scope,
    }
    items = [_block_view(r, r.target_name) for r in rows if covered[r.target_kind](r)]
    return {"items": items, "next_cursor": None}


# --- communication rules -------------------------------------------------------------------------


def check_rule_org(admin: Admin, org_id: str) -> None:
    if org_id not in admin.tree.orgs:
        raise not_found("organisation")
    if org_id not in admin.scope:
        raise forbidden("You can only set rules for your own organisations.")


def do_set_rule(session: Connection, caller_id: str, org_id: str, student_policy: str | None) -> dict[str, Any]:
    """Set (or, with None, remove) whom an organisation's students may contact; a repeat changes nothing."""
    admin = access_admin(session, caller_id)
    check_rule_org(admin, org_id)
    current = session.execute(
        text("SELECT student_policy FROM communication_rules WHERE org_id = :org FOR UPDATE"), {"org": org_id}
    ).scalar()
    if current != student_policy:
        if student_policy is None:
            session.execute(text("DELETE FROM communication_rules WHERE org_id = :org"), {"org": org_id})
        else:
            session.execute(
                text(
                    "INSERT INTO communication_rules (org_id, student_policy, updated_by) VALUES (:org, :policy, :by) "
                    "ON CONFLICT (org_id) DO UPDATE SET student_policy = excluded.student_policy, "
                    "updated_by = excluded.updated_by, updated_at = now()"
                ),
                {"org": org_id, "policy": student_policy, "by": admin.person.id},
            )
        add_events(
            session,
            SERVICE,
            [("directory.rule.changed", {"org_id": org_id, "student_policy": student_policy}, None)],
        )
    return rule_view(org_id, load_rules(session), admin.tree)


# --- privileges ----------------------------------------------------------------------------------


def check_privilege_target(
    session: Connection, admin: Admin, user_id: str, privilege: str, *, granting: bool
) -> Person:
    """The user whose privilege changes: in the administrator's organisations and, to be granted one, an admin.

    Revoking needs no admin target: a privilege must be removable from someone no longer an admin.
    """
    if privilege not in policy.PRIVILEGES:
        raise validation("No such privilege.", field="privilege", allowed=sorted(policy.PRIVILEGES))
    person = load_people(session, [user_id]).get(user_id)
    if person is None:
        raise not_found("user")
    if admin.scope.isdisjoint(person.org_ids):
        raise forbidden("You can only manage privileges in your own organisations.")
    if granting and person.role != "admin":
        raise validation("Only administrators can hold this privilege.", field="user_id")
    return person


def _privilege_view(user_id: str, privilege: str, granted: bool) -> dict[str, Any]:
    return {"user_id": user_id, "privilege": privilege, "granted": granted}


def do_grant_privilege(session: Connection, caller_id: str, user_id: str, privilege: str) -> dict[str, Any]:
    admin = access_admin(session, caller_id)
    check_privilege_target(session, admin, user_id, privilege, granting=True)
    session.execute(
        text(
            "INSERT INTO privileges (user_id, privilege, granted_by) VALUES (:user, :privilege, :by) "
            "ON CONFLICT DO NOTHING"
        ),
        {"user": user_id, "privilege": privilege, "by": admin.person.id},
    )
    return _privilege_view(user_id, privilege, True)


def do_revoke_privilege(session: Connection, caller_id: str, user_id: str, privilege: str) -> dict[str, Any]:
    admin = access_admin(session, caller_id)
    check_privilege_target(session, admin, user_id, privilege, granting=False)
    session.execute(
        text("DELETE FROM privileges WHERE user_id = :user AND privilege = :privilege"),
        {"user": user_id, "privilege": privilege},
    )
    return _privilege_view(user_id, privilege, False)


def has_privilege(session: Connection, user_id: str, privilege: str) -> dict[str, Any]:
    """Whether `user_id` holds `privilege` now: granted, and still an administrator."""
    if privilege not in policy.PRIVILEGES:
        raise validation("No such privilege.", field="privilege", allowed=sorted(policy.PRIVILEGES))
    granted = session.execute(
        text(
            "SELECT 1 FROM privileges p JOIN users u ON u.sourced_id = p.user_id "
            "WHERE p.user_id = :user AND p.privilege = :privilege AND u.role = 'admin'"
        ),
        {"user": user_id, "privilege": privilege},
    ).first()
    return _privilege_view(user_id, privilege, granted is not None)
