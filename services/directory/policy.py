"""Who may message whom: messaging blocks (F2), communication rules (F3), reach and relationships (F4).

Plain functions over plain data, no I/O: the service loads the facts, these decide.

Reach. A recipient is in a sender's reach when
  - they share a school: each one's organisations, walked up to and including the first
    organisation of type "school" (to the root where there is none), overlap; or
  - one of the sender's organisations is at or above one of the recipient's (a district
    administrator reaches every school under the district, not the other way round); or
  - they share a course or a project.
Someone out of reach is answered like an unknown id (`not_found`), as recipient search does.

Blocks. A user cannot send or receive when they are blocked, or when one of their
organisations or any organisation above it is blocked. A course block turns off messaging
in that course's conversation only; it is reported on its own, never folded into users.

Rules. A student's rule is the one set on the nearest organisation up the hierarchy from
each of their organisations; when their organisations disagree the strictest wins; with
none set, `anyone`. Rules restrict students only. Guardians may contact teachers,
administrators and staff in reach. Teachers, administrators and staff may contact anyone
in reach.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

StudentPolicy = Literal["anyone", "courses", "teachers"]
# From the most open to the strictest: the strictest is the one with the highest index.
POLICIES: tuple[StudentPolicy, ...] = ("anyone", "courses", "teachers")
DEFAULT_POLICY: StudentPolicy = "anyone"
STAFF_ROLES = frozenset({"teacher", "admin", "staff"})
PRIVILEGES = frozenset({"mass_messaging"})

SENDER_BLOCKED = "Messaging is turned off for your account."
_RULE_MESSAGES: dict[str, str] = {
    "courses": "Students at {org} can only message teachers and members of their own courses.",
    "teachers": "Students at {org} can only message teachers and school staff.",
}
GUARDIAN_RULE = "Guardians can only message teachers and school staff."
# How each role reads in a sentence ("You are the teacher in Math 9B", "Ada is a student in ...").
_ROLE_PHRASES: dict[str, str] = {
    "teacher": "the teacher",
    "student": "a student",
    "admin": "an administrator",
    "staff": "a staff member",
    "guardian": "a guardian",
}


@dataclass(frozen=True, slots=True)
class Org:
    id: str
    name: str
    type: str
    parent_id: str | None = None


class OrgTree:
    """The organisation hierarchy; unknown ids are leaves without parents, and cycles end walks."""

    __slots__ = ("orgs", "_children")

    def __init__(self, orgs: Iterable[Org]) -> None:
        self.orgs: dict[str, Org] = {o.id: o for o in orgs}
        self._children: dict[str, list[str]] = {}
        for o in self.orgs.values():
            if o.parent_id is not None:
                self._children.setdefault(o.parent_id, []).append(o.id)

    def lineage(self, org_id: str) -> list[str]:
        """The organisation and those above it, nearest first."""
        chain: list[str] = []
        current: str | None = org_id
        while current is not None and current not in chain:
            chain.append(current)
            org = self.orgs.get(current)
            current = org.parent_id if org else None
        return chain

    def above(self, org_ids: Iterable[str]) -> set[str]:
        """The organisations and every organisation above them."""
        return {a for o in org_ids for a in self.lineage(o)}

    def below(self, org_ids: Iterable[str]) -> set[str]:
        """The organisations and every organisation under them."""
        seen: set[str] = set()
        todo = list(org_ids)
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            todo.extend(self._children.get(current, ()))
        return seen

    def schools(self, org_ids: Iterable[str]) -> set[str]:
        """Each organisation walked up to and including its school (to the root without one)."""
        found: set[str] = set()
        for org_id in org_ids:
            for current in self.lineage(org_id):
                found.add(current)
                org = self.orgs.get(current)
                if org is not None and org.type == "school":
                    break
        return found

    def children(self, org_id: str) -> list[str]:
        return list(self._children.get(org_id, ()))

    def name(self, org_id: str) -> str:
        org = self.orgs.get(org_id)
        return org.name if org else org_id


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    given_name: str
    family_name: str
    role: str
    org_ids: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()


@dataclass(frozen=True, slots=True)
class Blocks:
    """What is blocked directly: users, organisations and courses (OneRoster classes) by id."""

    users: frozenset[str] = frozenset()
    orgs: frozenset[str] = frozenset()
    courses: frozenset[str] = frozenset()


# --- blocks ------------------------------------------------------------------------------------


def user_blocked(user_id: str, org_ids: Iterable[str], blocks: Blocks, tree: OrgTree) -> bool:
    """Whether a user may neither send nor receive: blocked themselves or through an organisation."""
    if user_id in blocks.users:
        return True
    if not blocks.orgs:
        return False  # the usual case: nothing to walk
    return not blocks.orgs.isdisjoint(tree.above(org_ids))


def course_blocked(course_id: str, blocks: Blocks) -> bool:
    return course_id in blocks.courses


BlockKind = Literal["user", "org", "course"]
BLOCK_KINDS: tuple[BlockKind, ...] = ("user", "org", "course")


def with_block(blocks: Blocks, kind: BlockKind, target_id: str) -> Blocks:
    return _edit(blocks, kind, lambda ids: ids | {target_id})


def without_block(blocks: Blocks, kind: BlockKind, target_id: str) -> Blocks:
    return _edit(blocks, kind, lambda ids: ids - {target_id})


def _edit(blocks: Blocks, kind: BlockKind, change: Callable[[frozenset[str]], frozenset[str]]) -> Blocks:
    field_name = {"user": "users", "org": "orgs", "course": "courses"}[kind]
    return replace(blocks, **{field_name: change(getattr(blocks, field_name))})


def changed_users(people: Iterable[Person], before: Blocks, after: Blocks, tree: OrgTree) -> list[str]:
    """Ids of the users whose effective state differs between two sets of blocks, sorted."""
    return sorted(
        p.id
        for p in people
        if user_blocked(p.id, p.org_ids, before, tree) != user_blocked(p.id, p.org_ids, after, tree)
    )


# --- reach and rules ---------------------------------------------------------------------------


def in_reach(sender: Person, recipient: Person, tree: OrgTree, *, share_group: bool = False) -> bool:
    """Whether `sender` can reach `recipient` at all (see the module docstring)."""
    if share_group or sender.id == recipient.id:
        return True
    if not tree.schools(sender.org_ids).isdisjoint(tree.schools(recipient.org_ids)):
        return True
    return not set(sender.org_ids).isdisjoint(tree.above(recipient.org_ids))


@dataclass(frozen=True, slots=True)
class Rule:
    policy: StudentPolicy
    org_id: str | None  # where it is set; None for the default


def student_rule(org_ids: Iterable[str], rules: Mapping[str, str], tree: OrgTree) -> Rule:
    """The rule for a student in `org_ids`: nearest set rule per organisation, strictest of those."""
    found = [Rule(DEFAULT_POLICY, None)]
    for org_id in org_ids:
        nearest = next((o for o in tree.lineage(org_id) if o in rules), None)
        if nearest is not None:
            found.append(Rule(rules[nearest], nearest))  # type: ignore[arg-type]
    return max(found, key=lambda r: (POLICIES.index(r.policy), r.org_id is not None))


def inherited_rule(org_id: str, rules: Mapping[str, str], tree: OrgTree) -> Rule:
    """The rule students directly in `org_id` get: its own, else the nearest above, else the default."""
    return student_rule([org_id], rules, tree)


@dataclass(frozen=True, slots=True)
class Refusal:
    user_id: str
    name: str | None
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class ContactFacts:
    tree: OrgTree
    rules: Mapping[str, str] = field(default_factory=dict)
    blocks: Blocks = field(default_factory=Blocks)
    # Ids of the people who share a course or a project with the sender.
    shares_group: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ContactDecision:
    sender_blocked: bool
    allowed: list[str]
    refused: list[Refusal]


def _rule_refusal(sender: Person, rule: Rule | None, recipient: Person, facts: ContactFacts) -> str | None:
    """Why the sender's role or rule forbids contacting `recipient`, or None when it allows it.

    `rule` is the student sender's rule (None for everyone else).
    """
    if sender.role in STAFF_ROLES or sender.id == recipient.id:
        return None
    if sender.role == "guardian":
        return None if recipient.role in STAFF_ROLES else GUARDIAN_RULE
    if rule is None or rule.policy == "anyone" or recipient.role in STAFF_ROLES:
        return None
    if rule.policy == "courses" and recipient.id in facts.shares_group:
        return None
    return _RULE_MESSAGES[rule.policy].format(org=facts.tree.name(rule.org_id or ""))


def check_contacts(
    sender: Person, recipient_ids: Sequence[str], people: Mapping[str, Person], facts: ContactFacts
) -> ContactDecision:
    """Which recipients the sender may start a conversation with or add, and why the others not.

    Precondition: `people` holds every known recipient (unknown ids are simply absent).
    Refusals, checked in this order: `not_found` (unknown or out of reach), `communication_rule`,
    `messaging_disabled` (the recipient is blocked). The sender's own id is always allowed.
    """
    allowed: list[str] = []
    refused: list[Refusal] = []
    rule = student_rule(sender.org_ids, facts.rules, facts.tree) if sender.role == "student" else None
    for rid in dict.fromkeys(recipient_ids):
        recipient = people.get(rid)
        share = rid in facts.shares_group
        if recipient is None or not in_reach(sender, recipient, facts.tree, share_group=share):
            refused.append(Refusal(rid, None, "not_found", "No such user."))
            continue
        why = _rule_refusal(sender, rule, recipient, facts)
        if why is not None:
            refused.append(Refusal(rid, recipient.name, "communication_rule", why))
        elif rid != sender.id and user_blocked(rid, recipient.org_ids, facts.blocks, facts.tree):
            refused.append(
                Refusal(rid, recipient.name, "messaging_disabled", f"{recipient.name} cannot receive messages.")
            )
        else:
            allowed.append(rid)
    blocked = user_blocked(sender.id, sender.org_ids, facts.blocks, facts.tree)
    return ContactDecision(sender_blocked=blocked, allowed=allowed, refused=refused)


# --- administration ----------------------------------------------------------------------------


def admin_scope(admin: Person, tree: OrgTree) -> set[str]:
    """The organisations an administrator governs: theirs and all under them; nothing for others."""
    return tree.below(admin.org_ids) if admin.role == "admin" else set()


def visible_orgs(person: Person, tree: OrgTree) -> set[str]:
    """The organisations someone may see: theirs, those above and those under."""
    return tree.above(person.org_ids) | tree.below(person.org_ids)


@dataclass(frozen=True, slots=True)
class OrgNode:
    id: str
    name: str
    type: str
    children: list[OrgNode]


def org_forest(tree: OrgTree, ids: set[str]) -> list[OrgNode]:
    """The organisations in `ids` nested under their parents; the tops are those whose parent is not in `ids`."""

    def node(org_id: str) -> OrgNode:
        org = tree.orgs[org_id]
        kids = sorted((c for c in tree.children(org_id) if c in ids), key=key)
        return OrgNode(org.id, org.name, org.type, [node(c) for c in kids])

    def key(org_id: str) -> tuple[str, str]:
        return (tree.orgs[org_id].name, org_id)

    known = {i for i in ids if i in tree.orgs}
    tops = sorted((i for i in known if tree.orgs[i].parent_id not in known), key=key)
    return [node(t) for t in tops]


# --- relationships -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SharedGroup:
    kind: Literal["course", "project"]
    id: str
    name: str
    my_role: str
    their_role: str


def role_phrase(role: str) -> str:
    return _ROLE_PHRASES.get(role, f"a {role}")


def relationship_summary(their_given_name: str, shared: Sequence[SharedGroup]) -> list[str]:
    """F4 as sentences: for each shared course or project, the caller's role, then theirs."""
    lines: list[str] = []
    for group in shared:
        lines.append(f"You are {role_phrase(group.my_role)} in {group.name}")
        lines.append(f"{their_given_name} is {role_phrase(group.their_role)} in {group.name}")
    return lines
