"""Read-side of the directory: users by id, recipient search, group members."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from services.directory.facts import load_expanded_blocks, load_people, load_tree
from services.directory.policy import admin_scope, user_blocked
from shared.errors import AppError, validation

SEARCH_LIMIT = 20

_USER_COLUMNS = "sourced_id, given_name, family_name, role, title, enabled, org_ids"


def user_view(row: Any, *, messaging_enabled: bool) -> dict[str, Any]:
    return {
        "id": row.sourced_id,
        "name": f"{row.given_name} {row.family_name}".strip(),
        "given_name": row.given_name,
        "family_name": row.family_name,
        "role": row.role,
        "title": row.title,
        "avatar_url": None,
        "org_ids": list(row.org_ids),
        "enabled": row.enabled,
        "messaging_enabled": messaging_enabled,
    }


def user_views(session: Connection, rows: Iterable[Any]) -> list[dict[str, Any]]:
    """Users as the API shows them, with their effective messaging state: one more query per batch."""
    rows = list(rows)
    if not rows:
        return []
    blocks, tree = load_expanded_blocks(session, [r.sourced_id for r in rows])
    return [user_view(r, messaging_enabled=not user_blocked(r.sourced_id, r.org_ids, blocks, tree)) for r in rows]


def get_users(session: Connection, ids: list[str]) -> list[dict[str, Any]]:
    if not ids:
        return []
    rows = session.execute(
        text(f"SELECT {_USER_COLUMNS} FROM users WHERE sourced_id = ANY(:ids)"), {"ids": list(set(ids))}
    )
    return user_views(session, rows)


def access_user(session: Connection, user_id: str) -> dict[str, Any]:
    """The user, or the uniform `not_found`."""
    found = get_users(session, [user_id])
    if not found:
        raise AppError("not_found", "No such user.")
    return found[0]


def org_scope(session: Connection, org_ids: list[str]) -> list[str]:
    """The given organisations and every organisation under them."""
    rows = session.execute(
        text(
            """
            WITH RECURSIVE scope(id) AS (
                SELECT sourced_id FROM orgs WHERE sourced_id = ANY(:ids)
                UNION
                SELECT o.sourced_id FROM orgs o JOIN scope s ON o.parent_id = s.id
            )
            SELECT id FROM scope
            """
        ),
        {"ids": org_ids},
    )
    return [r.id for r in rows]


def _like(q: str) -> str:
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(session: Connection, caller_id: str, q: str, limit: int = SEARCH_LIMIT) -> dict[str, list[dict[str, Any]]]:
    """People, courses and projects whose name contains `q`, within the caller's reach.

    People: anyone in the caller's organisations or under them. Courses and projects: those
    the caller belongs to; admins also reach every one of the schools under them.
    """
    q = q.strip()
    if not q:
        raise validation("Type a name to search for.", field="q")
    if len(q) > 100:
        raise validation("The search text is too long.", field="q")
    caller = access_user(session, caller_id)
    scope = org_scope(session, caller["org_ids"])
    pattern = _like(q)
    people = session.execute(
        text(
            f"""
            SELECT {_USER_COLUMNS} FROM users
            WHERE org_ids && :scope AND sourced_id <> :me
              AND lower(given_name || ' ' || family_name) LIKE :pattern
            ORDER BY family_name, given_name, sourced_id LIMIT :limit
            """
        ),
        {"scope": scope, "me": caller_id, "pattern": pattern, "limit": limit},
    )
    reach = {"me": caller_id, "is_admin": caller["role"] == "admin", "scope": scope}
    return {
        "people": [{"type": "user", **view} for view in user_views(session, people)],
        "courses": _search_groups(session, "course", pattern, reach, limit),
        "projects": _search_groups(session, "project", pattern, reach, limit),
    }


@dataclass(frozen=True, slots=True)
class _Group:
    """Where a kind of group lives: its table, its membership table and the key joining them."""

    table: str
    members: str
    key: str


GROUPS: dict[str, _Group] = {
    "course": _Group("classes", "enrollments", "class_id"),
    "project": _Group("projects", "project_members", "project_id"),
}


def _search_groups(
    session: Connection, kind: str, pattern: str, reach: dict[str, Any], limit: int
) -> list[dict[str, Any]]:
    """Groups of `kind` named like `pattern` that the caller belongs to, or (admins) in their schools."""
    g = GROUPS[kind]
    rows = session.execute(
        text(
            f"""
            SELECT g.sourced_id, g.title,
                   (SELECT count(*) FROM {g.members} m WHERE m.{g.key} = g.sourced_id) AS member_count
            FROM {g.table} g
            WHERE lower(g.title) LIKE :pattern
              AND (EXISTS (SELECT 1 FROM {g.members} m WHERE m.{g.key} = g.sourced_id AND m.user_id = :me)
                   OR (:is_admin AND g.school_id = ANY(:scope)))
            ORDER BY g.title, g.sourced_id LIMIT :limit
            """
        ),
        {"pattern": pattern, "limit": limit, **reach},
    )
    return [{"type": kind, "id": r.sourced_id, "name": r.title, "member_count": r.member_count} for r in rows]


def group_members(session: Connection, kind: str, group_id: str, caller_id: str | None = None) -> dict[str, Any]:
    """A course (OneRoster class) or project: its name and members with their role there.

    With a caller, only for its members and the administrators of its school; anyone else
    gets the same `not_found` as for a group that does not exist.
    """
    g = GROUPS.get(kind)
    if g is None:
        raise validation("kind must be course or project.", field="kind")
    group = session.execute(
        text(f"SELECT title, school_id FROM {g.table} WHERE sourced_id = :id"), {"id": group_id}
    ).first()
    if group is None:
        raise AppError("not_found", f"No such {kind}.")
    rows = session.execute(
        text(f"SELECT user_id, role FROM {g.members} WHERE {g.key} = :id ORDER BY user_id"), {"id": group_id}
    ).all()
    members = [{"user_id": r.user_id, "role": r.role} for r in rows]
    if caller_id is not None and caller_id not in {m["user_id"] for m in members}:
        caller = load_people(session, [caller_id]).get(caller_id)
        if caller is None or group.school_id not in admin_scope(caller, load_tree(session)):
            raise AppError("not_found", f"No such {kind}.")
    return {"name": group.title, "members": members}
