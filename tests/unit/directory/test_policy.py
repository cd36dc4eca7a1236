"""Who may message whom (services/directory/policy.py): blocks, rules, reach, relationships."""

from __future__ import annotations

import pytest

from services.directory import policy
from services.directory.policy import Blocks, ContactFacts, Org, OrgTree, Person, SharedGroup

TREE = OrgTree(
    [
        Org("district", "Northwind School District", "district"),
        Org("primary", "Northwind Primary School", "school", "district"),
        Org("secondary", "Northwind Secondary School", "school", "district"),
        Org("maths", "Maths Department", "department", "secondary"),
        Org("other-district", "Southgate District", "district"),
        Org("other-school", "Southgate High", "school", "other-district"),
    ]
)


def person(user_id: str, role: str, *orgs: str) -> Person:
    return Person(user_id, user_id.capitalize(), "Example", role, tuple(orgs))


STUDENT = person("student", "student", "primary")
CLASSMATE = person("classmate", "student", "primary")
STRANGER = person("stranger", "student", "primary")
TEACHER = person("teacher", "teacher", "primary")
PRINCIPAL = person("principal", "admin", "primary")
AIDE = person("aide", "staff", "primary")
GUARDIAN = person("guardian", "guardian", "primary")
PARENT = person("parent", "guardian", "primary")
SECONDARY_STUDENT = person("older", "student", "secondary")
MATHS_TEACHER = person("mathsteacher", "teacher", "maths")
DISTRICT_ADMIN = person("superintendent", "admin", "district")
FAR_STUDENT = person("far", "student", "other-school")
EVERYONE = {
    p.id: p
    for p in (
        STUDENT,
        CLASSMATE,
        STRANGER,
        TEACHER,
        PRINCIPAL,
        AIDE,
        GUARDIAN,
        PARENT,
        SECONDARY_STUDENT,
        MATHS_TEACHER,
        DISTRICT_ADMIN,
        FAR_STUDENT,
    )
}


def decide(
    sender: Person,
    recipients: list[str],
    *,
    rules: dict[str, str] | None = None,
    blocks: Blocks | None = None,
    mates: set[str] | None = None,
) -> policy.ContactDecision:
    facts = ContactFacts(TREE, rules or {}, blocks or Blocks(), frozenset(mates or ()))
    return policy.check_contacts(sender, recipients, EVERYONE, facts)


def refusal(decision: policy.ContactDecision, user_id: str) -> policy.Refusal:
    return next(r for r in decision.refused if r.user_id == user_id)


# --- communication rules -------------------------------------------------------------------------

# (rule, recipient, shares a course or project with the student, allowed)
RULE_MATRIX = [
    ("anyone", STRANGER, False, True),
    ("anyone", CLASSMATE, True, True),
    ("anyone", TEACHER, False, True),
    ("anyone", GUARDIAN, False, True),
    ("courses", STRANGER, False, False),
    ("courses", CLASSMATE, True, True),
    ("courses", GUARDIAN, False, False),
    ("courses", TEACHER, False, True),
    ("courses", PRINCIPAL, False, True),
    ("courses", AIDE, False, True),
    ("teachers", STRANGER, False, False),
    ("teachers", CLASSMATE, True, False),
    ("teachers", GUARDIAN, False, False),
    ("teachers", TEACHER, False, True),
    ("teachers", PRINCIPAL, False, True),
    ("teachers", AIDE, True, True),
]


@pytest.mark.parametrize(("rule", "recipient", "shares", "allowed"), RULE_MATRIX)
def test_a_students_rule_decides_whom_they_may_message(
    rule: str, recipient: Person, shares: bool, allowed: bool
) -> None:
    decision = decide(STUDENT, [recipient.id], rules={"primary": rule}, mates={recipient.id} if shares else set())
    assert (decision.allowed == [recipient.id]) is allowed
    if not allowed:
        assert refusal(decision, recipient.id).code == "communication_rule"


def test_the_refusal_names_the_organisation_whose_rule_applies() -> None:
    courses = decide(STUDENT, ["stranger"], rules={"primary": "courses"})
    assert refusal(courses, "stranger") == policy.Refusal(
        "stranger",
        "Stranger Example",
        "communication_rule",
        "Students at Northwind Primary School can only message teachers and members of their own courses.",
    )
    teachers = decide(STUDENT, ["stranger"], rules={"district": "teachers"})
    assert refusal(teachers, "stranger").message == (
        "Students at Northwind School District can only message teachers and school staff."
    )


@pytest.mark.parametrize("sender", [TEACHER, PRINCIPAL, AIDE])
@pytest.mark.parametrize("rule", policy.POLICIES)
def test_teachers_admins_and_staff_may_message_anyone_in_reach_whatever_the_rule(sender: Person, rule: str) -> None:
    everyone_nearby = ["student", "stranger", "guardian", "teacher", "aide", "principal"]
    decision = decide(sender, everyone_nearby, rules={"primary": rule, "district": rule})
    assert decision.allowed == everyone_nearby
    assert decision.refused == []


def test_guardians_may_message_teachers_admins_and_staff_only() -> None:
    decision = decide(GUARDIAN, ["teacher", "principal", "aide", "student", "parent"])
    assert decision.allowed == ["teacher", "principal", "aide"]
    assert {r.user_id: r.code for r in decision.refused} == {
        "student": "communication_rule",
        "parent": "communication_rule",
    }
    assert refusal(decision, "student").message == "Guardians can only message teachers and school staff."


def test_without_any_rule_students_may_message_anyone_in_reach() -> None:
    assert policy.student_rule(["primary"], {}, TREE) == policy.Rule("anyone", None)
    assert decide(STUDENT, ["stranger", "guardian"]).allowed == ["stranger", "guardian"]


def test_the_nearest_rule_up_the_hierarchy_applies() -> None:
    rules = {"district": "teachers", "primary": "anyone"}
    assert policy.student_rule(["primary"], rules, TREE) == policy.Rule("anyone", "primary")
    assert policy.student_rule(["secondary"], rules, TREE) == policy.Rule("teachers", "district")
    assert policy.student_rule(["maths"], {"secondary": "courses"}, TREE) == policy.Rule("courses", "secondary")


def test_when_a_students_organisations_disagree_the_strictest_rule_wins() -> None:
    rules = {"primary": "courses", "secondary": "teachers"}
    assert policy.student_rule(["primary", "secondary"], rules, TREE) == policy.Rule("teachers", "secondary")
    assert policy.student_rule(["primary", "maths"], {"primary": "courses"}, TREE) == policy.Rule("courses", "primary")


def test_the_rule_an_organisation_passes_on_is_its_own_or_the_nearest_above() -> None:
    assert policy.inherited_rule("maths", {"district": "courses"}, TREE) == policy.Rule("courses", "district")
    assert policy.inherited_rule("other-school", {"district": "courses"}, TREE) == policy.Rule("anyone", None)


# --- reach -----------------------------------------------------------------------------------------


def test_people_of_the_same_school_reach_each_other_down_to_its_departments() -> None:
    assert policy.in_reach(SECONDARY_STUDENT, MATHS_TEACHER, TREE)
    assert policy.in_reach(MATHS_TEACHER, SECONDARY_STUDENT, TREE)
    assert not policy.in_reach(STUDENT, SECONDARY_STUDENT, TREE)


def test_a_district_user_reaches_the_schools_under_it_but_not_the_other_way_round() -> None:
    assert policy.in_reach(DISTRICT_ADMIN, STUDENT, TREE)
    assert policy.in_reach(DISTRICT_ADMIN, MATHS_TEACHER, TREE)
    assert not policy.in_reach(STUDENT, DISTRICT_ADMIN, TREE)
    assert not policy.in_reach(DISTRICT_ADMIN, FAR_STUDENT, TREE)


def test_sharing_a_course_puts_people_of_different_schools_in_reach() -> None:
    assert policy.in_reach(STUDENT, SECONDARY_STUDENT, TREE, share_group=True)


def test_someone_out_of_reach_or_unknown_is_refused_as_not_found() -> None:
    decision = decide(TEACHER, ["older", "far", "nobody"])
    assert decision.allowed == []
    assert [(r.user_id, r.name, r.code) for r in decision.refused] == [
        ("older", None, "not_found"),
        ("far", None, "not_found"),
        ("nobody", None, "not_found"),
    ]


def test_repeated_recipients_are_answered_once_and_the_sender_is_always_allowed() -> None:
    decision = decide(STUDENT, ["stranger", "student", "stranger"], rules={"primary": "teachers"})
    assert decision.allowed == ["student"]
    assert [r.user_id for r in decision.refused] == ["stranger"]


# --- blocks ----------------------------------------------------------------------------------------


def test_a_blocked_user_can_neither_send_nor_receive() -> None:
    blocks = Blocks(users=frozenset({"student"}))
    assert policy.user_blocked("student", ["primary"], blocks, TREE)
    assert decide(STUDENT, ["teacher"], blocks=blocks).sender_blocked
    received = decide(TEACHER, ["student", "stranger"], blocks=blocks)
    assert received.allowed == ["stranger"]
    assert refusal(received, "student") == policy.Refusal(
        "student", "Student Example", "messaging_disabled", "Student Example cannot receive messages."
    )
    assert not received.sender_blocked


def test_a_blocked_organisation_blocks_everyone_in_it_and_under_it() -> None:
    district = Blocks(orgs=frozenset({"district"}))
    assert policy.user_blocked("mathsteacher", ["maths"], district, TREE)
    assert policy.user_blocked("student", ["primary"], district, TREE)
    assert not policy.user_blocked("far", ["other-school"], district, TREE)
    secondary = Blocks(orgs=frozenset({"secondary"}))
    assert policy.user_blocked("mathsteacher", ["maths"], secondary, TREE)
    assert not policy.user_blocked("student", ["primary"], secondary, TREE)
    assert not policy.user_blocked("superintendent", ["district"], secondary, TREE)


def test_one_blocked_organisation_is_enough_for_someone_in_several() -> None:
    blocks = Blocks(orgs=frozenset({"secondary"}))
    assert policy.user_blocked("musicteacher", ["primary", "secondary"], blocks, TREE)


def test_a_course_block_turns_off_the_course_and_no_one_personally() -> None:
    blocks = Blocks(courses=frozenset({"class-001"}))
    assert policy.course_blocked("class-001", blocks)
    assert not policy.course_blocked("class-002", blocks)
    assert not policy.user_blocked("student", ["primary"], blocks, TREE)
    assert decide(TEACHER, ["student"], blocks=blocks).allowed == ["student"]


def test_a_rule_refusal_is_given_before_a_block() -> None:
    decision = decide(
        STUDENT, ["stranger"], rules={"primary": "teachers"}, blocks=Blocks(users=frozenset({"stranger"}))
    )
    assert refusal(decision, "stranger").code == "communication_rule"


def test_only_users_whose_effective_state_changes_are_listed() -> None:
    people = [STUDENT, STRANGER, TEACHER]
    before = Blocks(users=frozenset({"stranger"}))
    after = policy.with_block(before, "org", "primary")
    assert after.orgs == {"primary"}
    assert policy.changed_users(people, before, after, TREE) == ["student", "teacher"]
    lifted = policy.without_block(after, "org", "primary")
    assert lifted == before
    assert policy.changed_users(people, after, lifted, TREE) == ["student", "teacher"]
    assert policy.changed_users(people, before, policy.with_block(before, "course", "class-001"), TREE) == []


def test_blocks_expanded_down_the_tree_decide_the_same_without_the_tree() -> None:
    direct = Blocks(users=frozenset({"far"}), orgs=frozenset({"secondary"}))
    expanded = Blocks(users=direct.users, orgs=frozenset(TREE.below(direct.orgs)))
    for p in EVERYONE.values():
        assert policy.user_blocked(p.id, p.org_ids, direct, TREE) == policy.user_blocked(
            p.id, p.org_ids, expanded, OrgTree(())
        )


# --- organisations and relationships ---------------------------------------------------------------


def test_an_administrator_governs_their_organisations_and_those_under_them() -> None:
    assert policy.admin_scope(DISTRICT_ADMIN, TREE) == {"district", "primary", "secondary", "maths"}
    assert policy.admin_scope(PRINCIPAL, TREE) == {"primary"}
    assert policy.admin_scope(TEACHER, TREE) == set()


def test_the_visible_tree_holds_ones_own_organisations_those_above_and_those_under() -> None:
    forest = policy.org_forest(TREE, policy.visible_orgs(SECONDARY_STUDENT, TREE))
    assert [(n.id, [(c.id, [g.id for g in c.children]) for c in n.children]) for n in forest] == [
        ("district", [("secondary", ["maths"])])
    ]
    everything = policy.org_forest(TREE, set(TREE.orgs))
    assert [n.name for n in everything] == ["Northwind School District", "Southgate District"]
    assert [c.name for c in everything[0].children] == ["Northwind Primary School", "Northwind Secondary School"]


def test_a_walk_up_a_cyclic_or_unknown_hierarchy_ends() -> None:
    cyclic = OrgTree([Org("a", "A", "school", "b"), Org("b", "B", "district", "a")])
    assert cyclic.lineage("a") == ["a", "b"]
    assert TREE.lineage("nowhere") == ["nowhere"]


def test_the_relationship_reads_as_sentences_about_each_ones_role() -> None:
    shared = [
        SharedGroup("course", "class-001", "Math 9B", "teacher", "student"),
        SharedGroup("project", "proj-01", "Robotics Club", "teacher", "student"),
    ]
    assert policy.relationship_summary("Ada", shared) == [
        "You are the teacher in Math 9B",
        "Ada is a student in Math 9B",
        "You are the teacher in Robotics Club",
        "Ada is a student in Robotics Club",
    ]
    flipped = [SharedGroup("course", "class-001", "Math 9B", "student", "teacher")]
    assert policy.relationship_summary("Alan", flipped) == [
        "You are a student in Math 9B",
        "Alan is the teacher in Math 9B",
    ]
    assert policy.relationship_summary("Alan", []) == []
