"""Reports from making to closing, the access they give, the audit log, and every refusal on the way.

A refusal is a clear error and changes nothing: no report, no access, no event, no audit entry.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.moderation.conftest import World

PUPIL, CLASSMATE, TEACHER, ADMIN = "user-s-0001", "user-s-0013", "user-t-001", "user-a-002"
OTHER_ADMIN, OTHER_TEACHER = "user-a-001", "user-t-002"


def state(world: World) -> tuple[Any, ...]:
    """Everything a moderation request could change."""
    return (
        world.rows("moderation", "SELECT id, state FROM reports ORDER BY id"),
        world.rows("moderation", "SELECT action, report_ids FROM audit_log ORDER BY id"),
        world.rows("moderation", "SELECT type FROM outbox ORDER BY id"),
        world.rows("conversations", "SELECT report_id, revoked FROM report_access ORDER BY report_id"),
        world.rows("conversations", "SELECT conversation_id, user_id, via FROM participants ORDER BY 1, 2"),
        world.rows("conversations", "SELECT id, body, deleted FROM messages ORDER BY id"),
    )


@pytest.fixture
def chat(world: World) -> dict[str, str]:
    """A student-only 1:1 with a message from PUPIL to CLASSMATE, and a student group."""
    started = world.api.start(PUPIL, CLASSMATE, body="you are silly")
    group = world.api.start(CLASSMATE, PUPIL, "user-s-0024", mode="group", body="group chat")
    return {
        "direct": started["conversation"]["id"],
        "message": started["message"]["id"],
        "group": group["conversation"]["id"],
        "own": world.api.send(CLASSMATE, started["conversation"]["id"], "that is mean")["id"],
    }


REFUSALS = [
    ("own message", lambda c: {"message_id": c["own"], "to_user_id": TEACHER}, "not_allowed"),
    ("a message one cannot see", lambda c: {"message_id": c["message"], "to_user_id": TEACHER}, "not_found"),
    (
        "no such message",
        lambda c: {"message_id": "5d1c0e2a-0000-4000-8000-000000000000", "to_user_id": TEACHER},
        "not_found",
    ),
    ("not an id", lambda c: {"message_id": "'; DROP TABLE reports; --", "to_user_id": TEACHER}, "not_found"),
    (
        "both a message and a conversation",
        lambda c: {"message_id": c["message"], "conversation_id": c["group"], "to_user_id": TEACHER},
        "validation_failed",
    ),
    ("neither", lambda c: {"to_user_id": TEACHER}, "validation_failed"),
    ("a 1:1 conversation", lambda c: {"conversation_id": c["direct"], "to_user_id": TEACHER}, "not_allowed"),
    (
        "an admin of another school",
        lambda c: {"message_id": c["message"], "to_user_id": OTHER_ADMIN},
        "validation_failed",
    ),
    (
        "a teacher of no shared course",
        lambda c: {"message_id": c["message"], "to_user_id": "user-t-016"},
        "validation_failed",
    ),
    ("the reporter themself", lambda c: {"message_id": c["message"], "to_user_id": CLASSMATE}, "validation_failed"),
    ("no reason", lambda c: {"message_id": c["message"], "to_user_id": TEACHER, "reason": "  "}, "validation_failed"),
    (
        "a reason too long",
        lambda c: {"message_id": c["message"], "to_user_id": TEACHER, "reason": "x" * 1001},
        "validation_failed",
    ),
    (
        "a reason that is not text",
        lambda c: {"message_id": c["message"], "to_user_id": TEACHER, "reason": ["x"]},
        "validation_failed",
    ),
    ("no recipient", lambda c: {"message_id": c["message"]}, "validation_failed"),
]


@pytest.mark.parametrize(("case", "params", "code"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_report_that_cannot_be_made_is_refused_clearly_and_changes_nothing(
    world: World, chat: dict[str, str], case: str, params: Any, code: str
) -> None:
    reporter = "user-s-0024" if case == "a message one cannot see" else CLASSMATE
    before = state(world)
    asked = {"reason": "Unkind", **params(chat)}
    error = world.refusal(reporter, "reports.create", **asked)
    assert error.code == code, error
    assert error.message
    assert state(world) == before


def test_a_report_opens_access_for_its_staff_only_and_closing_it_ends_access(
    world: World, chat: dict[str, str]
) -> None:
    offered = world.call(CLASSMATE, "reports.recipients", message_id=chat["message"])["items"]
    assert TEACHER in {s["user_id"] for s in offered} and PUPIL not in {s["user_id"] for s in offered}
    report = world.report(CLASSMATE, TEACHER, message_id=chat["message"])
    assert world.call(TEACHER, "conversations.get", conversation_id=chat["direct"])["through_report"] is True
    # Only the reporter and the staff member see the report.
    assert world.call(TEACHER, "reports.get", report_id=report["id"])["id"] == report["id"]
    for stranger in (PUPIL, ADMIN):
        assert world.refusal(stranger, "reports.get", report_id=report["id"]).code == "not_found"
        assert world.call(stranger, "reports.list")["items"] == []
    assert world.refusal(TEACHER, "reports.create", message_id=chat["message"], to_user_id=ADMIN, reason="x").code
    # A second report of the same message by the same student is the same report.
    before = state(world)
    again = world.refusal(CLASSMATE, "reports.create", message_id=chat["message"], to_user_id=ADMIN, reason="x")
    assert again.code == "not_allowed" and state(world) == before
    # Only the reporter withdraws, only the staff member resolves.
    assert world.refusal(TEACHER, "reports.withdraw", report_id=report["id"]).code == "forbidden"
    assert world.refusal(CLASSMATE, "reports.resolve", report_id=report["id"]).code == "forbidden"
    resolved = world.call(TEACHER, "reports.resolve", report_id=report["id"], note="Spoke to both")
    assert resolved["state"] == "resolved" and resolved["note"] == "Spoke to both"
    assert world.refusal(TEACHER, "conversations.get", conversation_id=chat["direct"]).code == "not_found"
    before = state(world)
    for user, method in ((TEACHER, "reports.resolve"), (CLASSMATE, "reports.withdraw")):
        error = world.refusal(user, method, report_id=report["id"])
        assert error.code == "not_allowed" and error.message == "This report was already resolved."
    assert world.refusal(CLASSMATE, "reports.withdraw", report_id="nonsense").code == "not_found"
    assert state(world) == before


def test_access_lasts_while_any_report_is_open_and_a_late_grant_changes_nothing(
    world: World, chat: dict[str, str]
) -> None:
    first = world.report(CLASSMATE, TEACHER, message_id=chat["message"])
    second = world.report(CLASSMATE, TEACHER, conversation_id=chat["group"])
    third = world.report("user-s-0024", TEACHER, conversation_id=chat["group"])
    world.call(CLASSMATE, "reports.withdraw", report_id=second["id"])
    assert world.call(TEACHER, "conversations.get", conversation_id=chat["group"])["through_report"] is True
    world.call("user-s-0024", "reports.withdraw", report_id=third["id"])
    assert world.refusal(TEACHER, "messages.list", conversation_id=chat["group"]).code == "not_found"
    # The report's event arriving after it closed (a redelivery) lets nobody back in.
    world.call(None, "moderation.grant", report_id=third["id"], conversation_id=chat["group"], user_id=TEACHER)
    assert world.refusal(TEACHER, "messages.list", conversation_id=chat["group"]).code == "not_found"
    assert world.call(TEACHER, "messages.list", conversation_id=chat["direct"])["items"]
    assert first["state"] == "open"


def test_a_reader_added_for_real_stays_when_the_report_closes(world: World, chat: dict[str, str]) -> None:
    report = world.report(CLASSMATE, TEACHER, conversation_id=chat["group"])
    listed = world.call(PUPIL, "participants.list", conversation_id=chat["group"])["items"]
    assert TEACHER not in {p["user_id"] for p in listed}
    assert world.refusal(PUPIL, "participants.remove", conversation_id=chat["group"], user_id=TEACHER).code in (
        "not_allowed",
        "forbidden",
    )
    world.call(PUPIL, "participants.add", conversation_id=chat["group"], user_ids=[TEACHER])
    world.call(CLASSMATE, "reports.withdraw", report_id=report["id"])
    view = world.call(TEACHER, "conversations.get", conversation_id=chat["group"])
    assert "through_report" not in view and view["participant_count"] == 4


def test_a_moderator_delete_is_audited_once_by_report_and_a_second_delete_is_refused(
    world: World, chat: dict[str, str]
) -> None:
    report = world.report(CLASSMATE, TEACHER, message_id=chat["message"])
    world.call(TEACHER, "messages.delete", message_id=chat["message"])
    before = state(world)
    error = world.refusal(TEACHER, "messages.delete", message_id=chat["message"])
    assert error.code == "not_allowed" and error.message == "This message has already been removed."
    assert state(world) == before
    world.deliver()
    world.deliver()  # nothing twice
    entries = world.call(ADMIN, "audit.list")["items"]
    assert [e["action"] for e in entries] == ["message.deleted", "report.created"]
    assert entries[0]["report_ids"] == [report["id"]] and entries[0]["actor"]["id"] == TEACHER
    assert entries[0]["details"]["through_report"] is True
    assert world.call(ADMIN, "audit.list", action="report.created")["items"] == entries[1:]
    assert world.call(ADMIN, "audit.list", actor_id=PUPIL)["items"] == []
    assert world.call(OTHER_ADMIN, "audit.list")["items"] == []
    for bad in ({"since": "yesterday"}, {"action": "deleted"}, {"report_id": "x"}, {"limit": 0}, {"cursor": "forged"}):
        assert world.refusal(ADMIN, "audit.list", **bad).code in ("validation_failed", "invalid_cursor")
    # Nothing the moderation service keeps holds the message's words.
    text = " ".join(str(r) for r in world.rows("moderation", "SELECT CAST(t AS text) FROM reports t"))
    text += " ".join(str(r) for r in world.rows("moderation", "SELECT CAST(t AS text) FROM audit_log t"))
    assert "silly" not in text


def test_removing_someone_who_does_not_take_part_is_refused_and_changes_nothing(
    world: World, chat: dict[str, str]
) -> None:
    group = world.api.start(TEACHER, PUPIL, CLASSMATE, mode="group", body="hi")["conversation"]["id"]
    before = state(world)
    error = world.refusal(TEACHER, "participants.remove", conversation_id=group, user_id="user-s-0024")
    assert error.code == "not_found"
    assert world.refusal(TEACHER, "participants.remove", conversation_id=group, user_id=TEACHER).code == "not_allowed"
    assert state(world) == before


def test_blocking_is_for_students_in_a_one_to_one_only(world: World, chat: dict[str, str]) -> None:
    teacher_chat = world.api.start(TEACHER, PUPIL, body="hello")["conversation"]["id"]
    assert world.refusal(TEACHER, "conversations.block", conversation_id=teacher_chat).code == "forbidden"
    assert world.refusal(PUPIL, "conversations.block", conversation_id=chat["group"]).code == "not_allowed"
    assert world.refusal(ADMIN, "conversations.block", conversation_id=chat["direct"]).code == "not_found"
    world.call(CLASSMATE, "conversations.block", conversation_id=chat["direct"])
    world.call(CLASSMATE, "conversations.block", conversation_id=chat["direct"])  # twice is once
    assert world.rows("conversations", "SELECT count(*) AS n FROM user_blocks")[0].n == 1
    error = world.refusal(PUPIL, "messages.send", conversation_id=chat["direct"], body="sorry")
    [blocker] = world.rows("conversations", "SELECT name FROM people WHERE user_id = :u", u=CLASSMATE)
    assert (error.code, error.message) == ("recipient_unavailable", f"{blocker.name} is not available")
    # Individual messages skip the one who blocked the sender.
    sent = world.api.start(PUPIL, CLASSMATE, "user-s-0024", mode="individual", body="party on friday")
    assert sent["conversation"]["recipient_count"] == 2
    bodies = [m["body"] for m in world.call(CLASSMATE, "messages.list", conversation_id=chat["direct"])["items"]]
    assert "party on friday" not in bodies
