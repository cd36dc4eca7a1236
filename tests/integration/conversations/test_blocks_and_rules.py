"""Messaging blocks (F2) and communication rules (F3) from the directory, enforced on every path here."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from services import directory
from services.conversations.consumers import consumers
from shared.bus import start_consumer
from shared.config import Settings
from shared.errors import AppError
from shared.outbox import start_relay
from shared.rpc import Caller, Method
from tests.integration.conversations.conftest import OTHER, STUDENT, TEACHER, Api
from tests.support.waiting import wait_for

PRINCIPAL = "user-a-002"  # governs the secondary school, where Math 9B is


@pytest.fixture
def admin(db: Settings) -> dict[str, Method]:
    """The directory's own methods, for an administrator's blocks and rules."""
    return directory.DEFINITION.methods(db)


@pytest.fixture
def following(db: Settings, api: Api) -> Iterator[None]:
    """Directory events flow to this service as they would in production."""
    relay, _ = start_relay(db, "directory", db.database_url("directory"))
    started = [start_consumer(db, spec)[0] for spec in consumers(db)]
    yield
    for consumer in started:
        consumer.stop()
    relay.stop()


def _block(admin: dict[str, Method], **target: str) -> None:
    admin["blocks.create"](Caller(PRINCIPAL), target)


def _refusal(run: Callable[[], object]) -> AppError:
    with pytest.raises(AppError) as info:
        run()
    return info.value


def test_a_blocked_recipient_of_a_new_one_to_one_gets_the_cannot_be_delivered_feedback(api: Api, admin) -> None:
    _block(admin, user_id=STUDENT)
    error = _refusal(lambda: api.start(TEACHER, STUDENT))
    assert error.code == "messaging_disabled"
    assert error.message.startswith("Your message cannot be delivered:")
    assert error.message.endswith("cannot receive messages.")


def test_a_new_group_names_who_cannot_take_part(api: Api, admin) -> None:
    _block(admin, user_id=OTHER)
    error = _refusal(lambda: api.start(TEACHER, STUDENT, OTHER, mode="group"))
    assert error.code == "recipients_unavailable"
    assert "cannot take part in this conversation" in error.message
    assert error.details["user_ids"] == [OTHER]


def test_a_blocked_sender_cannot_start_anything(api: Api, admin) -> None:
    _block(admin, user_id=STUDENT)
    error = _refusal(lambda: api.start(STUDENT, TEACHER))
    assert (error.code, error.message) == ("messaging_disabled", "Messaging is turned off for your account.")


def test_a_block_reaches_existing_conversations_through_directory_events(api: Api, admin, following) -> None:
    cid = api.start(TEACHER, STUDENT, body="Before the block")["conversation"]["id"]
    _block(admin, user_id=STUDENT)

    def refused() -> bool:
        try:
            api.send(TEACHER, cid, "probe")
        except AppError as exc:
            return exc.code == "messaging_disabled"
        return False

    assert wait_for(refused)
    error = _refusal(lambda: api.send(TEACHER, cid, "After the block"))
    assert "cannot be delivered" in error.message
    assert _refusal(lambda: api.send(STUDENT, cid, "Me neither")).message == "Messaging is turned off for your account."
    # History stays readable.
    assert api.call(STUDENT, "messages.list", conversation_id=cid)["items"]


def test_a_course_block_stops_its_course_conversation(api: Api, admin, following) -> None:
    cid = api.start(TEACHER, ("course", "class-001"), mode="group", body="Welcome")["conversation"]["id"]
    _block(admin, course_id="class-001")
    assert wait_for(lambda: _course_refuses(api, cid))
    error = _refusal(lambda: api.start(TEACHER, ("course", "class-001"), mode="group"))
    assert error.code == "messaging_disabled" and "Math 9B" in error.message


def _course_refuses(api: Api, cid: str) -> bool:
    try:
        api.send(STUDENT, cid, "probe")
    except AppError as exc:
        return exc.code == "messaging_disabled"
    return False


def test_a_schools_rule_limits_whom_students_may_start_a_conversation_with(api: Api, admin) -> None:
    admin["rules.set"](Caller(PRINCIPAL), {"org_id": "org-school-2", "student_policy": "teachers"})
    error = _refusal(lambda: api.start(STUDENT, OTHER))
    assert error.code == "communication_rule"
    assert api.start(STUDENT, TEACHER)["conversation"]["type"] == "direct"
    # Adding someone to a group is held to the same rule.
    group = api.start(TEACHER, STUDENT, "user-t-002", mode="group")["conversation"]["id"]
    added = _refusal(lambda: api.call(STUDENT, "participants.add", conversation_id=group, user_ids=[OTHER]))
    assert added.code == "communication_rule"


def test_a_course_message_tells_the_sender_which_members_cannot_receive_it(api: Api, admin, following) -> None:
    cid = api.start(TEACHER, ("course", "class-001"), mode="group", body="Welcome")["conversation"]["id"]
    _block(admin, user_id=STUDENT)

    def noticed() -> bool:
        sent = api.send(TEACHER, cid, "Homework is up")
        return any(n["code"] == "members_unavailable" and STUDENT in n["user_ids"] for n in sent.get("notices", []))

    assert wait_for(noticed)
    notice = api.send(TEACHER, cid, "One more")["notices"][0]
    assert notice["message"].startswith("1 member cannot receive messages: ")


def test_someone_out_of_reach_is_as_unknown_as_someone_missing(api: Api) -> None:
    primary_student = "user-s-0015"  # another school, no shared course with the teacher
    out_of_reach = _refusal(lambda: api.start(TEACHER, primary_student))
    missing = _refusal(lambda: api.start(TEACHER, "user-s-9999"))
    assert out_of_reach.code == missing.code == "not_found"
    assert out_of_reach.message == missing.message
