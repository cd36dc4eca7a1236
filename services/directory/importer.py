"""Apply a parsed roster bundle to the store: create, update and remove rows, and say what changed.

Bulk files replace their whole kind; delta files merge (rows marked tobedeleted go);
absent files leave their kind alone. Re-applying the same bundle changes nothing and
publishes nothing. Everything happens in the caller's transaction, events included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, text
from sqlalchemy.dialects.postgresql import insert

from services.directory import models as m
from services.directory import policy
from services.directory.admin import messaging_events
from services.directory.facts import load_blocks, load_tree
from services.directory.policy import OrgTree
from services.directory.roster.errors import RosterError, RosterIssue
from services.directory.roster.model import Bundle
from shared.outbox import add_events

SERVICE = "directory"
Row = dict[str, Any]
Event = tuple[str, dict[str, Any], list[str] | None]


def user_event_data(row: Row) -> dict[str, Any]:
    return {
        "user_id": row["sourced_id"],
        "name": f"{row['given_name']} {row['family_name']}".strip(),
        "given_name": row["given_name"],
        "family_name": row["family_name"],
        "role": row["role"],
        "title": row["title"],
        "org_ids": list(row["org_ids"]),
        "enabled": row["enabled"],
    }


def _membership_key(kind: str, row: Row) -> dict[str, Any]:
    group = row["class_id"] if kind == "course" else row["project_id"]
    return {"kind": kind, "group_id": group, "user_id": row["user_id"]}


def _user_events(added: list[Row], changed: list[Row], removed: list[Row]) -> list[Event]:
    return [("directory.user.upserted", user_event_data(r), None) for r in added + changed] + [
        ("directory.user.removed", {"user_id": r["sourced_id"]}, None) for r in removed
    ]


def _membership_events(kind: str) -> Callable[[list[Row], list[Row], list[Row]], list[Event]]:
    def events(added: list[Row], changed: list[Row], removed: list[Row]) -> list[Event]:
        # A changed role is announced as a fresh "added" with the new role: consumers upsert.
        return [
            ("directory.enrolment.added", {**_membership_key(kind, r), "role": r["role"]}, None)
            for r in added + changed
        ] + [("directory.enrolment.removed", _membership_key(kind, r), None) for r in removed]

    return events


def _no_events(added: list[Row], changed: list[Row], removed: list[Row]) -> list[Event]:
    return []


@dataclass(frozen=True, slots=True)
class _Kind:
    file: str
    table: sa.Table
    key: tuple[str, ...]
    rows: Callable[[Bundle], Iterable[Row]]
    events: Callable[[list[Row], list[Row], list[Row]], list[Event]]


KINDS: tuple[_Kind, ...] = (
    _Kind(
        "orgs",
        m.Org.__table__,
        ("sourced_id",),
        lambda b: (
            {
                "sourced_id": o.sourced_id,
                "name": o.name,
                "type": o.type,
                "parent_id": o.parent_id,
                "identifier": o.identifier,
            }
            for o in b.orgs
        ),
        _no_events,
    ),
    _Kind(
        "users",
        m.User.__table__,
        ("sourced_id",),
        lambda b: (
            {
                "sourced_id": u.sourced_id,
                "given_name": u.given_name,
                "family_name": u.family_name,
                "roster_role": u.role,
                "role": u.platform_role,
                "username": u.username,
                "email": u.email,
                "title": u.title,
                "enabled": u.enabled,
                "org_ids": list(u.org_ids),
            }
            for u in b.users
        ),
        _user_events,
    ),
    _Kind(
        "courses",
        m.Course.__table__,
        ("sourced_id",),
        lambda b: ({"sourced_id": c.sourced_id, "title": c.title, "org_id": c.org_id} for c in b.courses),
        _no_events,
    ),
    _Kind(
        "classes",
        m.Class.__table__,
        ("sourced_id",),
        lambda b: (
            {
                "sourced_id": c.sourced_id,
                "title": c.title,
                "course_id": c.course_id,
                "school_id": c.school_id,
                "class_code": c.class_code,
            }
            for c in b.classes
        ),
        _no_events,
    ),
    _Kind(
        "enrollments",
        m.Enrollment.__table__,
        ("sourced_id",),
        lambda b: (
            {
                "sourced_id": e.sourced_id,
                "class_id": e.class_id,
                "user_id": e.user_id,
                "roster_role": e.role,
                "role": e.platform_role,
                "school_id": e.school_id,
            }
            for e in b.enrollments
        ),
        _membership_events("course"),
    ),
    _Kind(
        "projects",
        m.Project.__table__,
        ("sourced_id",),
        lambda b: ({"sourced_id": p.sourced_id, "title": p.title, "school_id": p.school_id} for p in b.projects),
        _no_events,
    ),
    _Kind(
        "projectMembers",
        m.ProjectMember.__table__,
        ("project_id", "user_id"),
        lambda b: (
            {"project_id": p.project_id, "user_id": p.user_id, "roster_role": p.role, "role": p.platform_role}
            for p in b.project_members
        ),
        _membership_events("project"),
    ),
)

_CHUNK = 2000


def _key(kind: _Kind, row: Row) -> tuple[Any, ...]:
    return tuple(row[k] for k in kind.key)


def _load(session: Connection, kind: _Kind) -> dict[tuple[Any, ...], Row]:
    rows = session.execute(sa.select(kind.table)).mappings()
    return {_key(kind, r): dict(r) for r in rows}


def _upsert(session: Connection, kind: _Kind, rows: list[Row]) -> None:
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        stmt = insert(kind.table)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(kind.key),
            set_={c.name: stmt.excluded[c.name] for c in kind.table.columns if c.name not in kind.key},
        )
        session.execute(stmt, chunk)


def _delete(session: Connection, kind: _Kind, keys: list[tuple[Any, ...]]) -> None:
    cols = [kind.table.c[k] for k in kind.key]
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        session.execute(sa.delete(kind.table).where(sa.tuple_(*cols).in_(chunk)))


def _deleted_keys(kind: _Kind, bundle: Bundle, existing: dict[tuple[Any, ...], Row]) -> set[tuple[Any, ...]]:
    ids = bundle.deleted.get(kind.file, frozenset())
    if kind.key == ("sourced_id",):
        return {(i,) for i in ids} & existing.keys()
    # Project members are keyed by (project, user); their "sourcedId" is "project:user" in the extension file.
    return {k for k in existing if ":".join(k) in ids}


def _check_external_refs(session: Connection, bundle: Bundle) -> None:
    """Delta rows may point at ids the store must already hold; refuse the bundle otherwise."""
    by_kind = {k.file: k for k in KINDS}
    issues: list[RosterIssue] = []
    for ref in bundle.external_refs:
        kind = by_kind[ref.kind]
        exists = session.execute(
            sa.select(sa.literal(1)).select_from(kind.table).where(kind.table.c[kind.key[0]] == ref.sourced_id)
        ).first()
        if exists is None:
            issues.append(RosterIssue(ref.file, ref.line, ref.column, f"unknown {ref.kind} id {ref.sourced_id!r}"))
    if issues:
        raise RosterError(issues[:100], truncated=len(issues) > 100)


def _org_blocks_exist(session: Connection) -> bool:
    return session.execute(text("SELECT 1 FROM messaging_blocks WHERE target_kind = 'org' LIMIT 1")).first() is not None


def _messaging_moves(session: Connection, tree_before: OrgTree, moves: list[tuple[Row, Row]]) -> list[Event]:
    """Users who moved into or out of a blocked organisation: their messaging turns off or on (F2)."""
    blocks = load_blocks(session, [new["sourced_id"] for _, new in moves])
    tree_after = load_tree(session)
    turned_off, turned_on = [], []
    for old, new in moves:
        user_id = new["sourced_id"]
        was = policy.user_blocked(user_id, old["org_ids"], blocks, tree_before)
        now = policy.user_blocked(user_id, new["org_ids"], blocks, tree_after)
        if was != now:
            (turned_off if now else turned_on).append(user_id)
    events: list[Event] = []
    if turned_off:
        events += messaging_events("user", "", turned_off, enabled=False)
    if turned_on:
        events += messaging_events("user", "", turned_on, enabled=True)
    return events


def filled_tables(counts: dict[str, dict[str, int]]) -> list[str]:
    """The tables an import changed (its outbox among them when it announced anything)."""
    tables = [kind.table.name for kind in KINDS if any(counts.get(kind.file, {}).values())]
    return [*tables, "outbox"] if tables else []


def apply_bundle(session: Connection, bundle: Bundle) -> dict[str, dict[str, int]]:
    """Apply `bundle` in the open transaction; counts of created / updated / deleted rows per file."""
    counts: dict[str, dict[str, int]] = {}
    events: list[Event] = []
    # Moving people between organisations can move them into or out of a blocked one.
    tree_before = load_tree(session) if _org_blocks_exist(session) else None
    moves: list[tuple[Row, Row]] = []
    for kind in KINDS:
        mode = bundle.file_modes.get(kind.file, "absent")
        if mode == "absent":
            continue
        existing = _load(session, kind)
        incoming = {_key(kind, r): r for r in kind.rows(bundle)}
        if mode == "bulk":
            removed_keys = existing.keys() - incoming.keys()
        else:
            removed_keys = _deleted_keys(kind, bundle, existing)
            for key in removed_keys:
                incoming.pop(key, None)
        added = [r for k, r in incoming.items() if k not in existing]
        changed = [r for k, r in incoming.items() if k in existing and existing[k] != r]
        removed = [existing[k] for k in sorted(removed_keys)]
        if kind.file == "users" and tree_before is not None:
            moves = [
                (existing[k], r)
                for k, r in incoming.items()
                if k in existing and existing[k]["org_ids"] != r["org_ids"]
            ]
        _upsert(session, kind, added + changed)
        _delete(session, kind, sorted(removed_keys))
        counts[kind.file] = {"created": len(added), "updated": len(changed), "deleted": len(removed)}
        events += kind.events(added, changed, removed)
    _check_external_refs(session, bundle)
    if moves and tree_before is not None:
        events += _messaging_moves(session, tree_before, moves)
    if events:
        events.append(("directory.roster.imported", {"counts": counts}, None))
        add_events(session, SERVICE, events)
    return counts
