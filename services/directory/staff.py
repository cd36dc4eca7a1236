"""Staff someone may turn to: whom an abuse report can go to, and the administrators of an organisation.

Used by moderation. Disabled accounts (the roster's `enabledUser` false) are left out; messaging
blocks are not: a report must still reach a teacher whose messaging is turned off.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, text

from services.directory import policy
from services.directory.admin import access_admin
from services.directory.contacts import access_caller
from services.directory.facts import load_tree, person
from services.directory.policy import OrgTree, Person
from shared.errors import not_found

# The teachers of the classes `me` is enrolled in (any role), one row each with those classes' titles.
_TEACHERS = text(
    """
    SELECT u.sourced_id, u.given_name, u.family_name, u.role, u.title, u.org_ids,
           array_agg(DISTINCT c.title ORDER BY c.title) AS class_titles
    FROM enrollments mine
    JOIN enrollments theirs ON theirs.class_id = mine.class_id AND theirs.role = 'teacher'
    JOIN classes c ON c.sourced_id = mine.class_id
    JOIN users u ON u.sourced_id = theirs.user_id
    WHERE mine.user_id = :me AND u.enabled AND NOT u.sourced_id = ANY(:excluded)
    GROUP BY u.sourced_id
    """
)

# Administrators belonging to one of `orgs` (callers pass the target organisations and all above them).
_ADMINS = text(
    """
    SELECT sourced_id, given_name, family_name, role, title, org_ids FROM users
    WHERE role = 'admin' AND enabled AND org_ids && :orgs AND NOT sourced_id = ANY(:excluded)
    """
)


def governing_org(admin: Person, org_ids: Iterable[str], tree: OrgTree) -> str | None:
    """The administrator's own organisation nearest above one of `org_ids` (ties by name, then id),
    or None when they govern none of them."""
    scope, own = policy.admin_scope(admin, tree), set(admin.org_ids)
    found = [
        (depth, tree.name(org), org)
        for org_id in org_ids
        if org_id in scope
        for depth, org in enumerate(tree.lineage(org_id))
        if org in own
    ]
    return min(found)[2] if found else None


def _item(row: Any, role: str, reason: str) -> dict[str, Any]:
    return {
        "user_id": row.sourced_id,
        "name": f"{row.given_name} {row.family_name}".strip(),
        "role": role,
        "title": row.title,
        "reason": reason,
    }


def _by_name(item: dict[str, Any]) -> tuple[str, str, str]:
    return (item["name"].casefold(), item["name"], item["user_id"])


def _admin_items(
    session: Connection, tree: OrgTree, org_ids: Iterable[str], excluded: list[str]
) -> dict[str, dict[str, Any]]:
    """The enabled administrators governing one of `org_ids`, by id, with where they are administrators."""
    org_ids = list(org_ids)
    rows = session.execute(_ADMINS, {"orgs": sorted(tree.above(org_ids)), "excluded": excluded})
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        org = governing_org(person(row), org_ids, tree)
        if org is not None:
            found[row.sourced_id] = _item(row, "admin", f"Administrator at {tree.name(org)}")
    return found


def report_recipients(session: Connection, reporter_id: str, exclude: list[str]) -> dict[str, Any]:
    """The staff a user may report abuse to: the teachers of their classes, then the administrators
    of their organisations, each by name; one item per person, the teacher reason first."""
    me = access_caller(session, reporter_id)
    tree = load_tree(session)
    excluded = sorted({me.id, *exclude})
    teachers = [
        _item(r, "admin" if r.role == "admin" else "teacher", f"Teacher in {', '.join(r.class_titles)}")
        for r in session.execute(_TEACHERS, {"me": me.id, "excluded": excluded})
    ]
    taken = {t["user_id"] for t in teachers}
    admins = [a for uid, a in _admin_items(session, tree, me.org_ids, excluded).items() if uid not in taken]
    return {"items": sorted(teachers, key=_by_name) + sorted(admins, key=_by_name)}


def admins_covering(session: Connection, org_id: str) -> dict[str, Any]:
    """The enabled administrators whose organisations include `org_id`, by name."""
    tree = load_tree(session)
    if org_id not in tree.orgs:
        raise not_found("organisation")
    return {"items": sorted(_admin_items(session, tree, [org_id], []).values(), key=_by_name)}


def admin_scope(session: Connection, caller_id: str) -> dict[str, Any]:
    """The organisations the caller governs, or `forbidden` for anyone but an administrator."""
    return {"org_ids": sorted(access_admin(session, caller_id).scope)}
