"""Mass messaging (F27) as the directory answers it: who may send, as which organisation, to whom."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.directory.conftest import Directory

DISTRICT_ADMIN = "user-a-000"  # org-district
PRIMARY_PRINCIPAL = "user-a-001"  # org-school-1
SECONDARY_PRINCIPAL = "user-a-002"  # org-school-2
TEACHER = "user-t-001"
STUDENT = "user-s-0001"  # org-school-2
ROLES = ["admin", "guardian", "staff", "student", "teacher"]

NOT_ADMIN = "Only administrators can send mass messages."
NO_PRIVILEGE = "You need the mass messaging privilege to do this."
OUT_OF_SCOPE = "You can only send mass messages to your own organisations."


def grant(directory: Directory, user_id: str) -> None:
    """The privilege as a governing administrator grants it (the district administrator holds it by row)."""
    if user_id == DISTRICT_ADMIN:
        directory.rows(
            "INSERT INTO privileges (user_id, privilege, granted_by) VALUES (:u, 'mass_messaging', :u) RETURNING 1",
            u=user_id,
        )
    else:
        directory("privileges.grant", {"user_id": user_id, "privilege": "mass_messaging"}, as_user=DISTRICT_ADMIN)


def expected(directory: Directory, org_ids: set[str], roles: list[str] = ROLES, *, caller: str) -> list[str]:
    """The audience worked out by hand: members of `org_ids` (a whole subtree) in `roles`, but the caller."""
    rows = directory.rows("SELECT sourced_id, role, org_ids FROM users")
    return sorted(r.sourced_id for r in rows if r.role in roles and org_ids & set(r.org_ids) and r.sourced_id != caller)


def audience(directory: Directory, params: dict[str, Any], *, as_user: str) -> list[dict[str, Any]]:
    """Every page of the audience, in order."""
    found: list[dict[str, Any]] = []
    after = None
    while True:
        page = directory("mass.audience", {**params, "after": after}, as_user=as_user)
        found += page["members"]
        after = page["next"]
        if after is None:
            return found


def test_an_administrator_without_the_privilege_is_refused_until_granted(directory: Directory) -> None:
    params = {"org_id": "org-school-2"}
    before = directory.state()
    for method in ("mass.authorise", "mass.audience"):
        refused = directory.refusal(method, params, as_user=SECONDARY_PRINCIPAL)
        assert (refused.code, refused.message) == ("forbidden", NO_PRIVILEGE)
    assert directory.state() == before
    grant(directory, SECONDARY_PRINCIPAL)
    assert directory("mass.authorise", params, as_user=SECONDARY_PRINCIPAL)["audience_size"] > 600
    revoke = {"user_id": SECONDARY_PRINCIPAL, "privilege": "mass_messaging"}
    directory("privileges.revoke", revoke, as_user=DISTRICT_ADMIN)
    assert directory.refusal("mass.authorise", params, as_user=SECONDARY_PRINCIPAL).message == NO_PRIVILEGE


def test_only_administrators_may_send_even_with_a_leftover_privilege(directory: Directory) -> None:
    grant(directory, SECONDARY_PRINCIPAL)
    directory.rows("UPDATE users SET role = 'teacher' WHERE sourced_id = :id RETURNING 1", id=SECONDARY_PRINCIPAL)
    before = directory.state()
    for caller in (TEACHER, STUDENT, SECONDARY_PRINCIPAL):
        refused = directory.refusal("mass.authorise", {"org_id": "org-school-2"}, as_user=caller)
        assert (refused.code, refused.message) == ("forbidden", NOT_ADMIN)
    assert directory.refusal("mass.audience", {"org_id": "org-school-2"}).code == "unauthenticated"
    assert directory.refusal("mass.audience", {"org_id": "org-school-2"}, as_user="user-nobody").code == (
        "unauthenticated"
    )
    assert directory.state() == before


def test_a_school_administrator_sends_as_their_school_to_its_members(directory: Directory) -> None:
    grant(directory, SECONDARY_PRINCIPAL)
    found = directory("mass.authorise", {"org_id": "org-school-2"}, as_user=SECONDARY_PRINCIPAL)
    members = expected(directory, {"org-school-2"}, caller=SECONDARY_PRINCIPAL)
    assert found == {
        "sender": {"org_id": "org-school-2", "name": "Northwind Secondary School", "type": "school"},
        "org_ids": ["org-school-2"],
        "roles": ROLES,
        "audience_size": len(members),
    }
    listed = directory("mass.audience", {"org_id": "org-school-2"}, as_user=SECONDARY_PRINCIPAL)
    assert listed["next"] is None
    assert [m["user_id"] for m in listed["members"]] == members
    assert all(m == {"user_id": m["user_id"], "messaging_enabled": True} for m in listed["members"])
    # The caller is never in their own audience; the school's other administrators are, the other school's not.
    school_admins = expected(directory, {"org-school-2"}, ["admin"], caller="")
    assert SECONDARY_PRINCIPAL in school_admins and SECONDARY_PRINCIPAL not in members
    assert set(school_admins) - {SECONDARY_PRINCIPAL} <= set(members) and PRIMARY_PRINCIPAL not in members


def test_roles_filter_the_audience_and_come_back_sorted_and_deduplicated(directory: Directory) -> None:
    grant(directory, SECONDARY_PRINCIPAL)
    params = {"org_id": "org-school-2", "org_ids": ["org-school-2", "org-school-2"], "roles": ["teacher", "guardian"]}
    found = directory("mass.authorise", params, as_user=SECONDARY_PRINCIPAL)
    assert found["org_ids"] == ["org-school-2"] and found["roles"] == ["guardian", "teacher"]
    teachers_and_guardians = expected(directory, {"org-school-2"}, ["guardian", "teacher"], caller=SECONDARY_PRINCIPAL)
    assert found["audience_size"] == len(teachers_and_guardians) > 0
    listed = directory("mass.audience", params, as_user=SECONDARY_PRINCIPAL)["members"]
    assert [m["user_id"] for m in listed] == teachers_and_guardians
    roles = {r.sourced_id: r.role for r in directory.rows("SELECT sourced_id, role FROM users")}
    assert {roles[m["user_id"]] for m in listed} == {"guardian", "teacher"}
    admins = directory("mass.authorise", {**params, "roles": ["admin"]}, as_user=SECONDARY_PRINCIPAL)
    assert admins["audience_size"] == len(expected(directory, {"org-school-2"}, ["admin"], caller=SECONDARY_PRINCIPAL))


def test_the_district_scope_reaches_both_schools_and_a_sender_may_name_other_recipients(
    directory: Directory,
) -> None:
    grant(directory, DISTRICT_ADMIN)
    everyone = expected(directory, {"org-district", "org-school-1", "org-school-2"}, caller=DISTRICT_ADMIN)
    assert len(everyone) == directory.scalar("SELECT count(*) FROM users") - 1
    district = directory("mass.authorise", {"org_id": "org-district"}, as_user=DISTRICT_ADMIN)
    assert district["sender"] == {"org_id": "org-district", "name": "Northwind School District", "type": "district"}
    assert district["audience_size"] == len(everyone)
    assert [m["user_id"] for m in audience(directory, {"org_id": "org-district"}, as_user=DISTRICT_ADMIN)] == everyone
    # Sent as the district to the primary school only: its members, including teachers of both schools.
    params = {"org_id": "org-district", "org_ids": ["org-school-1"]}
    primary = expected(directory, {"org-school-1"}, caller=DISTRICT_ADMIN)
    found = directory("mass.authorise", params, as_user=DISTRICT_ADMIN)
    assert found["sender"]["org_id"] == "org-district" and found["org_ids"] == ["org-school-1"]
    assert found["audience_size"] == len(primary)
    assert [m["user_id"] for m in audience(directory, params, as_user=DISTRICT_ADMIN)] == primary
    both = directory("mass.authorise", {**params, "org_ids": ["org-school-1", "org-school-2"]}, as_user=DISTRICT_ADMIN)
    assert both["audience_size"] == len(everyone)  # each person once, whatever schools they share


@pytest.mark.parametrize(
    ("caller", "params", "code", "message"),
    [
        (SECONDARY_PRINCIPAL, {"org_id": "org-district"}, "forbidden", OUT_OF_SCOPE),
        (SECONDARY_PRINCIPAL, {"org_id": "org-school-1"}, "forbidden", OUT_OF_SCOPE),
        (SECONDARY_PRINCIPAL, {"org_id": "org-school-2", "org_ids": ["org-school-1"]}, "forbidden", OUT_OF_SCOPE),
        (SECONDARY_PRINCIPAL, {"org_id": "org-district", "org_ids": ["org-school-2"]}, "forbidden", OUT_OF_SCOPE),
        (
            SECONDARY_PRINCIPAL,
            {"org_id": "org-school-2", "org_ids": ["org-school-2", "org-district"]},
            "forbidden",
            OUT_OF_SCOPE,
        ),
        (SECONDARY_PRINCIPAL, {"org_id": "org-nowhere"}, "not_found", "No such organisation."),
        (
            SECONDARY_PRINCIPAL,
            {"org_id": "org-school-2", "org_ids": ["org-school-2", "org-nowhere"]},
            "not_found",
            "No such organisation.",
        ),
        (DISTRICT_ADMIN, {"org_id": "org-nowhere"}, "not_found", "No such organisation."),
    ],
)
def test_unknown_or_ungoverned_organisations_are_refused_and_change_nothing(
    directory: Directory, caller: str, params: dict[str, Any], code: str, message: str
) -> None:
    grant(directory, caller)
    before = directory.state()
    for method in ("mass.authorise", "mass.audience"):
        refused = directory.refusal(method, params, as_user=caller)
        assert (refused.code, refused.message) == (code, message)
    assert directory.state() == before


def test_blocked_members_stay_in_the_audience_with_messaging_off(directory: Directory) -> None:
    grant(directory, DISTRICT_ADMIN)
    directory("blocks.create", {"user_id": STUDENT}, as_user=SECONDARY_PRINCIPAL)
    directory("blocks.create", {"org_id": "org-school-1"}, as_user=DISTRICT_ADMIN)
    members = audience(directory, {"org_id": "org-district", "limit": 250}, as_user=DISTRICT_ADMIN)
    off = sorted(m["user_id"] for m in members if not m["messaging_enabled"])
    assert off == sorted([STUDENT, *expected(directory, {"org-school-1"}, caller=DISTRICT_ADMIN)])
    assert (
        len(members) == directory("mass.authorise", {"org_id": "org-district"}, as_user=DISTRICT_ADMIN)["audience_size"]
    )
    # The same state the messaging-state method reports, for the same people.
    sample = [m["user_id"] for m in members[:: len(members) // 40]]
    state = directory("policy.messaging_state", {"user_ids": sample})["users"]
    by_id = {m["user_id"]: m["messaging_enabled"] for m in members}
    assert {u: s["messaging_enabled"] for u, s in state.items()} == {u: by_id[u] for u in sample}


def test_a_district_block_turns_everyone_off(directory: Directory) -> None:
    grant(directory, SECONDARY_PRINCIPAL)
    directory("blocks.create", {"org_id": "org-district"}, as_user=DISTRICT_ADMIN)
    members = audience(directory, {"org_id": "org-school-2"}, as_user=SECONDARY_PRINCIPAL)
    assert members and not any(m["messaging_enabled"] for m in members)


def test_paging_returns_every_member_exactly_once_in_order(directory: Directory) -> None:
    grant(directory, DISTRICT_ADMIN)
    everyone = expected(directory, {"org-district", "org-school-1", "org-school-2"}, caller=DISTRICT_ADMIN)
    sizes: list[int] = []
    after = None
    seen: list[str] = []
    while True:
        params = {"org_id": "org-district", "after": after, "limit": 97}
        page = directory("mass.audience", params, as_user=DISTRICT_ADMIN)
        sizes.append(len(page["members"]))
        seen += [m["user_id"] for m in page["members"]]
        if page["next"] is None:
            break
        assert page["next"] == seen[-1]
        after = page["next"]
    assert seen == everyone
    assert sizes == [97] * (len(everyone) // 97) + ([len(everyone) % 97] if len(everyone) % 97 else [])
    # An exact multiple ends with a full page whose `next` is null, never an empty page after it.
    exact = directory("mass.audience", {"org_id": "org-district", "limit": len(everyone)}, as_user=DISTRICT_ADMIN)
    assert exact["next"] is None and len(exact["members"]) == len(everyone)
    # A cursor past the end is an empty last page; omitted `after` is the first page.
    assert directory("mass.audience", {"org_id": "org-district", "after": "zzz"}, as_user=DISTRICT_ADMIN) == {
        "members": [],
        "next": None,
    }
    first = directory("mass.audience", {"org_id": "org-district", "limit": 5}, as_user=DISTRICT_ADMIN)
    assert [m["user_id"] for m in first["members"]] == everyone[:5] and first["next"] == everyone[4]


def test_fifty_thousand_members_page_in_a_few_seconds(directory: Directory) -> None:
    grant(directory, SECONDARY_PRINCIPAL)
    directory.rows(
        """
        INSERT INTO users (sourced_id, given_name, family_name, roster_role, role, username, email, title,
                           enabled, org_ids)
        SELECT 'bulk-' || lpad(i::text, 6, '0'), 'Bulk', 'Student ' || i, 'student', 'student',
               'bulk' || i, '', '', true, ARRAY['org-school-2']
        FROM generate_series(1, 50000) AS i
        RETURNING 1
        """
    )
    directory("blocks.create", {"user_id": "bulk-000007"}, as_user=SECONDARY_PRINCIPAL)
    started = time.monotonic()
    size = directory("mass.authorise", {"org_id": "org-school-2", "roles": ["student"]}, as_user=SECONDARY_PRINCIPAL)
    members = audience(
        directory, {"org_id": "org-school-2", "roles": ["student"], "limit": 10_000}, as_user=SECONDARY_PRINCIPAL
    )
    elapsed = time.monotonic() - started
    assert size["audience_size"] == len(members) == len({m["user_id"] for m in members}) > 50_000
    assert [m["user_id"] for m in members if not m["messaging_enabled"]] == ["bulk-000007"]
    assert elapsed < 5, f"{elapsed:.1f}s for {len(members)} members"


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"org_id": ""},
        {"org_id": 5},
        {"org_id": ["org-school-2"]},
        {"org_id": "org-school-2", "org_ids": "org-school-2"},
        {"org_id": "org-school-2", "org_ids": []},
        {"org_id": "org-school-2", "org_ids": [7]},
        {"org_id": "org-school-2", "org_ids": ["org-school-2"] * 101},
        {"org_id": "org-school-2", "roles": []},
        {"org_id": "org-school-2", "roles": "teacher"},
        {"org_id": "org-school-2", "roles": ["teacher", "principal"]},
        {"org_id": "org-school-2", "roles": [None]},
        {"org_id": "org-school-2", "everyone": True},
    ],
)
def test_malformed_requests_are_refused_by_both_methods(directory: Directory, params: dict[str, Any]) -> None:
    grant(directory, SECONDARY_PRINCIPAL)
    before = directory.state()
    for method in ("mass.authorise", "mass.audience"):
        assert directory.refusal(method, params, as_user=SECONDARY_PRINCIPAL).code == "validation_failed"
    assert directory.state() == before


@pytest.mark.parametrize(
    "paging",
    [
        {"limit": 0},
        {"limit": 10_001},
        {"limit": True},
        {"limit": "50"},
        {"limit": 2.5},
        {"limit": None},
        {"after": 5},
        {"after": ""},
        {"after": ["user-s-0001"]},
    ],
)
def test_malformed_paging_is_refused_and_only_the_audience_pages(directory: Directory, paging: dict[str, Any]) -> None:
    grant(directory, SECONDARY_PRINCIPAL)
    params = {"org_id": "org-school-2", **paging}
    assert directory.refusal("mass.audience", params, as_user=SECONDARY_PRINCIPAL).code == "validation_failed"
    assert directory.refusal("mass.authorise", params, as_user=SECONDARY_PRINCIPAL).code == "validation_failed"
