"""Who may message whom, as the other services and clients ask it: contacts, messaging state,
relationships (F4), the organisation tree and communication rules as read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from services.directory import policy
from services.directory.facts import (
    load_blocks,
    load_expanded_blocks,
    load_group_mates,
    load_people,
    load_rules,
    load_tree,
)
from services.directory.policy import ContactFacts, OrgNode, OrgTree, Person, SharedGroup
from shared.errors import AppError, not_found


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value is not None else None


def access_caller(session: Connection, caller_id: str) -> Person:
    """The caller as a roster person; someone the roster no longer holds may do nothing."""
    found = load_people(session, [caller_id]).get(caller_id)
    if found is None:
        raise AppError("unauthenticated", "Your account is not in the roster.")
    return found


def check_contacts(session: Connection, sender_id: str, recipient_ids: list[str]) -> dict[str, Any]:
    """F2 and F3 for a new conversation or an added participant; see `policy.check_contacts`."""
    sender = access_caller(session, sender_id)
    people = load_people(session, recipient_ids)
    facts = ContactFacts(
        tree=load_tree(session),
        rules=load_rules(session) if sender.role == "student" else {},
        blocks=load_blocks(session, [sender_id, *people]),
        shares_group=load_group_mates(session, sender_id, people),
    )
    decision = policy.check_contacts(sender, recipient_ids, people, facts)
    return {
        "sender_blocked": decision.sender_blocked,
        "sender_error": (
            {"code": "messaging_disabled", "message": policy.SENDER_BLOCKED} if decision.sender_blocked else None
        ),
        "allowed": decision.allowed,
        "refused": [
            {"user_id": r.user_id, "name": r.name, "code": r.code, "message": r.message} for r in decision.refused
        ],
    }


def messaging_state(session: Connection, user_ids: list[str], course_ids: list[str]) -> dict[str, Any]:
    """Effective messaging state of users and courses, in two queries whatever the batch size.

    A user the roster does not hold cannot receive: `messaging_enabled` is false for them.
    """
    rows = session.execute(
        text("SELECT sourced_id, org_ids FROM users WHERE sourced_id = ANY(:ids)"), {"ids": list(set(user_ids))}
    )
    orgs = {r.sourced_id: r.org_ids for r in rows}
    blocks, tree = load_expanded_blocks(session, user_ids, course_ids)
    return {
        "users": {
            uid: {"messaging_enabled": uid in orgs and not policy.user_blocked(uid, orgs[uid], blocks, tree)}
            for uid in user_ids
        },
        "courses": {cid: {"messaging_enabled": not policy.course_blocked(cid, blocks)} for cid in course_ids},
    }


_SHARED_GROUPS = text(
    """
    SELECT DISTINCT 'course' AS kind, c.sourced_id AS id, c.title AS name,
           mine.role AS my_role, theirs.role AS their_role
    FROM enrollments mine
    JOIN enrollments theirs ON theirs.class_id = mine.class_id
    JOIN classes c ON c.sourced_id = mine.class_id
    WHERE mine.user_id = :me AND theirs.user_id = :them
    UNION
    SELECT DISTINCT 'project', p.sourced_id, p.title, mine.role, theirs.role
    FROM project_members mine
    JOIN project_members theirs ON theirs.project_id = mine.project_id
    JOIN projects p ON p.sourced_id = mine.project_id
    WHERE mine.user_id = :me AND theirs.user_id = :them
    ORDER BY kind, name, id, my_role, their_role
    """
)


def relationship(session: Connection, caller_id: str, user_id: str) -> dict[str, Any]:
    """F4: the courses and projects the caller shares with `user_id`, and each one's role there.

    Either one reaching the other is enough (a student may ask about the district administrator
    who wrote to them); anyone further away is `not_found`.
    """
    me = access_caller(session, caller_id)
    them = load_people(session, [user_id]).get(user_id)
    if them is None:
        raise not_found("user")
    shared = [
        SharedGroup(r.kind, r.id, r.name, r.my_role, r.their_role)
        for r in session.execute(_SHARED_GROUPS, {"me": me.id, "them": them.id})
    ]
    tree = load_tree(session)
    if not (policy.in_reach(me, them, tree, share_group=bool(shared)) or policy.in_reach(them, me, tree)):
        raise not_found("user")
    return {
        "user": {"id": them.id, "name": them.name, "role": them.role},
        "shared": [
            {"kind": g.kind, "id": g.id, "name": g.name, "my_role": g.my_role, "their_role": g.their_role}
            for g in shared
        ],
        "summary": policy.relationship_summary(them.given_name, shared),
    }


def _node_view(node: OrgNode) -> dict[str, Any]:
    return {"id": node.id, "name": node.name, "type": node.type, "children": [_node_view(c) for c in node.children]}


def org_tree(session: Connection, caller_id: str) -> dict[str, Any]:
    """The organisations the caller may see (theirs, above and under), nested."""
    me = access_caller(session, caller_id)
    tree = load_tree(session)
    return {"orgs": [_node_view(n) for n in policy.org_forest(tree, policy.visible_orgs(me, tree))]}


def access_org(tree: OrgTree, me: Person, org_id: str) -> str:
    """An organisation the caller may see, or the uniform `not_found`."""
    if org_id not in tree.orgs or org_id not in policy.visible_orgs(me, tree):
        raise not_found("organisation")
    return org_id


def rule_view(org_id: str, rules: dict[str, str], tree: OrgTree) -> dict[str, Any]:
    effective = policy.inherited_rule(org_id, rules, tree)
    return {
        "org_id": org_id,
        "org_name": tree.name(org_id),
        "student_policy": rules.get(org_id),
        "effective_policy": effective.policy,
        "source_org_id": effective.org_id,
    }


def get_rule(session: Connection, caller_id: str, org_id: str) -> dict[str, Any]:
    """The rule set on an organisation (None: inherits) and the one its students get."""
    me = access_caller(session, caller_id)
    tree = load_tree(session)
    access_org(tree, me, org_id)
    return rule_view(org_id, load_rules(session), tree)
