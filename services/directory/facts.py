"""Loading what the policy functions decide on: organisations, people, rules, blocks, shared groups."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, text

from services.directory.policy import Blocks, Org, OrgTree, Person

_PERSON_COLUMNS = "sourced_id, given_name, family_name, role, org_ids"


def person(row: Any) -> Person:
    return Person(row.sourced_id, row.given_name, row.family_name, row.role, tuple(row.org_ids))


def load_tree(session: Connection) -> OrgTree:
    """Every organisation: a district's hierarchy is tens to hundreds of rows."""
    rows = session.execute(text("SELECT sourced_id, name, type, parent_id FROM orgs"))
    return OrgTree(Org(r.sourced_id, r.name, r.type, r.parent_id) for r in rows)


def load_people(session: Connection, ids: Iterable[str]) -> dict[str, Person]:
    rows = session.execute(
        text(f"SELECT {_PERSON_COLUMNS} FROM users WHERE sourced_id = ANY(:ids)"), {"ids": list(set(ids))}
    )
    return {r.sourced_id: person(r) for r in rows}


def load_members_of(session: Connection, org_ids: Iterable[str]) -> list[Person]:
    """Everyone who belongs to one of `org_ids` (callers pass a whole subtree)."""
    rows = session.execute(
        text(f"SELECT {_PERSON_COLUMNS} FROM users WHERE org_ids && :orgs ORDER BY sourced_id"),
        {"orgs": list(org_ids)},
    )
    return [person(r) for r in rows]


def load_rules(session: Connection) -> dict[str, str]:
    return {
        r.org_id: r.student_policy
        for r in session.execute(text("SELECT org_id, student_policy FROM communication_rules"))
    }


def load_blocks(session: Connection, user_ids: Iterable[str]) -> Blocks:
    """The organisation and course blocks, and the user blocks of `user_ids` (organisations as set, not expanded)."""
    rows = session.execute(
        text(
            "SELECT target_kind, target_id FROM messaging_blocks WHERE target_kind <> 'user' OR target_id = ANY(:ids)"
        ),
        {"ids": list(set(user_ids))},
    )
    found: dict[str, set[str]] = {"user": set(), "org": set(), "course": set()}
    for r in rows:
        found[r.target_kind].add(r.target_id)
    return Blocks(frozenset(found["user"]), frozenset(found["org"]), frozenset(found["course"]))


# One round trip for the hot path: the blocked organisations already expanded downwards (so no
# tree is needed to test a user's organisations against them), the user blocks of the batch, and
# the course blocks asked about. With no blocks at all it reads three empty index ranges.
_BLOCK_STATE = text(
    """
    WITH RECURSIVE blocked(id) AS (
        SELECT target_id FROM messaging_blocks WHERE target_kind = 'org'
        UNION
        SELECT o.sourced_id FROM orgs o JOIN blocked b ON o.parent_id = b.id
    )
    SELECT 'org' AS kind, id FROM blocked
    UNION ALL
    SELECT target_kind, target_id FROM messaging_blocks
    WHERE (target_kind = 'user' AND target_id = ANY(:users))
       OR (target_kind = 'course' AND target_id = ANY(:courses))
    """
)


def load_expanded_blocks(
    session: Connection, user_ids: Iterable[str], course_ids: Iterable[str] = ()
) -> tuple[Blocks, OrgTree]:
    """Blocks whose `orgs` already include everything under a blocked organisation, with the (empty)
    tree that makes `policy.user_blocked` test a user's own organisations against them."""
    rows = session.execute(_BLOCK_STATE, {"users": list(set(user_ids)), "courses": list(set(course_ids))})
    found: dict[str, set[str]] = {"user": set(), "org": set(), "course": set()}
    for r in rows:
        found[r.kind].add(r.id)
    blocks = Blocks(frozenset(found["user"]), frozenset(found["org"]), frozenset(found["course"]))
    return blocks, OrgTree(())


def load_group_mates(session: Connection, user_id: str, others: Iterable[str]) -> frozenset[str]:
    """Which of `others` share a course (OneRoster class) or a project with `user_id`."""
    rows = session.execute(
        text(
            """
            SELECT theirs.user_id FROM enrollments mine
            JOIN enrollments theirs ON theirs.class_id = mine.class_id
            WHERE mine.user_id = :me AND theirs.user_id = ANY(:others)
            UNION
            SELECT theirs.user_id FROM project_members mine
            JOIN project_members theirs ON theirs.project_id = mine.project_id
            WHERE mine.user_id = :me AND theirs.user_id = ANY(:others)
            """
        ),
        {"me": user_id, "others": list(set(others))},
    )
    return frozenset(r.user_id for r in rows)
