"""Mass messages from request to delivery: who may send, what recipients see, exactly once per
recipient however often a task runs, progress, and cancelling."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from sqlalchemy import text

from shared.db import transaction
from shared.errors import AppError
from tests.integration.mass_messaging.conftest import ADMIN, DISTRICT_ADMIN, OTHER_ADMIN, Mass

STUDENT, TEACHER = "user-s-0001", "user-t-001"


def state(mass: Mass) -> tuple[Any, ...]:
    return (
        mass.rows("mass_messaging", "SELECT id, state, delivered FROM jobs ORDER BY id"),
        mass.rows("mass_messaging", "SELECT count(*) AS n FROM outbox"),
        mass.rows("conversations", "SELECT count(*) AS n FROM participants"),
    )


def send(mass: Mass, **params: Any) -> dict[str, Any]:
    return mass.call(ADMIN, "mass.create", **{"org_id": "org-school-2", "body": "School closes at noon.", **params})


def test_a_mass_message_reaches_each_member_once_and_cannot_be_answered(mass: Mass) -> None:
    job = send(mass, roles=["teacher"])
    assert job["state"] == "queued" and job["audience"] > 0
    mass.run()
    done = mass.call(ADMIN, "mass.get", job_id=job["id"])
    assert done["state"] == "completed", done
    assert done["delivered"] + done["skipped"] == done["audience"] and done["failed"] == 0
    teachers = {
        r.user_id
        for r in mass.rows(
            "directory",
            "SELECT sourced_id AS user_id FROM users WHERE role = 'teacher' AND org_ids && ARRAY['org-school-2']",
        )
    }
    received = {r.user_id for r in mass.rows("conversations", "SELECT user_id FROM participants")}
    assert received == teachers and done["delivered"] == len(teachers)
    # What a recipient sees: the school as sender, one message, unread, no reply, no search, no one else.
    view = mass.api.conversation(TEACHER, done["conversation_id"])
    assert (view["type"], view["name"], view["unread_count"], view["participant_count"]) == (
        "mass",
        "Northwind Secondary School",
        1,
        1,
    )
    assert "send" not in view["can"] and "search" not in view["can"]
    [message] = mass.api.call(TEACHER, "messages.list", conversation_id=view["id"])["items"]
    assert message["body"] == "School closes at noon." and message["sender"]["name"] == "Northwind Secondary School"
    with pytest.raises(AppError) as info:
        mass.api.send(TEACHER, view["id"], "Thanks!")
    assert (info.value.code, info.value.message) == ("not_allowed", "Mass messages cannot be answered.")
    with pytest.raises(AppError) as info:
        mass.api.call(TEACHER, "search.conversation", conversation_id=view["id"], q="noon")
    assert info.value.code == "not_allowed"
    assert mass.api.call(TEACHER, "search.all", q="noon")["items"] == []
    [sender] = mass.api.call(TEACHER, "participants.list", conversation_id=view["id"])["items"]
    assert sender["name"] == "Northwind Secondary School"
    assert mass.api.call(TEACHER, "unread.total")["unread_total"] >= 1
    # One event per chunk tells every recipient in it, with the same view.
    with transaction(mass.settings.database_url("conversations")) as session:
        events = session.execute(
            text("SELECT envelope FROM outbox WHERE type = 'conversations.conversation.created'")
        ).all()
    assert len(events) == 1


def test_a_chunk_run_twice_delivers_once_and_counts_once(mass: Mass, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mass.runner, "settings", dataclasses.replace(mass.settings, mass_chunk_size=200))
    job = send(mass)
    mass.run(limit=1)  # the plan: chunks queued
    queued = list(mass.tasks.queue)
    assert queued and all(name == "mass.deliver" for name, _ in queued)
    mass.tasks.queue.extend(queued)  # every chunk's task delivered twice (a redelivery)
    mass.tasks.send_task("mass.plan", [job["id"]])  # and the plan once more (the sweeper)
    mass.run()
    done = mass.call(ADMIN, "mass.get", job_id=job["id"])
    assert done["state"] == "completed" and done["delivered"] + done["skipped"] == done["audience"]
    counts = mass.rows(
        "conversations",
        "SELECT count(*) AS n, count(DISTINCT user_id) AS people FROM participants WHERE conversation_id = :c",
        c=done["conversation_id"],
    )
    assert counts[0].n == counts[0].people == done["delivered"]
    assert mass.rows("conversations", "SELECT count(*) AS n FROM messages")[0].n == 1


def test_members_whose_messaging_is_blocked_are_skipped_and_counted(mass: Mass) -> None:
    with transaction(mass.settings.database_url("directory")) as session:
        session.execute(
            text("INSERT INTO messaging_blocks (target_kind, target_id, created_by) VALUES ('user', :u, 'user-a-002')"),
            {"u": TEACHER},
        )
    job = send(mass, roles=["teacher"])
    mass.run()
    done = mass.call(ADMIN, "mass.get", job_id=job["id"])
    assert done["skipped"] == 1
    assert not mass.rows("conversations", "SELECT 1 FROM participants WHERE user_id = :u", u=TEACHER)


def test_cancelling_stops_the_chunks_not_yet_delivered(mass: Mass, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mass.runner, "settings", dataclasses.replace(mass.settings, mass_chunk_size=50))
    job = send(mass)  # everyone at the school: many chunks of 50
    mass.run(limit=2)  # the plan and the first chunk
    cancelled = mass.call(ADMIN, "mass.cancel", job_id=job["id"])
    assert cancelled["state"] == "cancelled"
    mass.run()
    done = mass.call(ADMIN, "mass.get", job_id=job["id"])
    assert done["state"] == "cancelled" and 0 < done["delivered"] <= 50 < done["audience"]
    people = mass.rows("conversations", "SELECT count(*) AS n FROM participants")[0].n
    assert people == done["delivered"]
    before = state(mass)
    error = mass.refusal(ADMIN, "mass.cancel", job_id=job["id"])
    assert (error.code, error.message) == ("not_allowed", "This mass message has already cancelled.")
    assert state(mass) == before


def test_progress_is_told_to_the_sender_only(mass: Mass) -> None:
    job = send(mass, roles=["admin"])
    mass.run()
    rows = mass.rows(
        "mass_messaging", "SELECT envelope FROM outbox WHERE type = 'mass_messaging.job.progress' ORDER BY id"
    )
    events = [json.loads(r.envelope) for r in rows]
    assert {tuple(e["audience"]) for e in events} == {(ADMIN,)}
    assert [e["data"]["job"]["state"] for e in events][0] == "queued"
    assert events[-1]["data"]["job"]["state"] == "completed" and events[-1]["data"]["job"]["id"] == job["id"]
    listed = mass.call(ADMIN, "mass.list")["items"]
    assert [j["id"] for j in listed] == [job["id"]]
    assert mass.call(DISTRICT_ADMIN, "mass.list")["items"] == []


REFUSALS = [
    ("a student", STUDENT, {}, "forbidden"),
    ("a teacher", TEACHER, {}, "forbidden"),
    ("an admin without the privilege", OTHER_ADMIN, {"org_id": "org-school-1"}, "forbidden"),
    ("an organisation outside the sender's", ADMIN, {"org_ids": ["org-school-1"]}, "forbidden"),
    ("sending as an organisation above", ADMIN, {"org_id": "org-district"}, "forbidden"),
    ("an unknown organisation", ADMIN, {"org_ids": ["org-nowhere"]}, "not_found"),
    ("an empty body", ADMIN, {"body": "   "}, "validation_failed"),
    ("a body too long", ADMIN, {"body": "x" * 10_001}, "validation_failed"),
    ("no roles", ADMIN, {"roles": []}, "validation_failed"),
    ("an unknown role", ADMIN, {"roles": ["parents"]}, "validation_failed"),
    ("no organisation", ADMIN, {"org_id": None}, "validation_failed"),
]


@pytest.mark.parametrize(("case", "user", "params", "code"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_mass_message_that_may_not_go_is_refused_and_creates_nothing(
    mass: Mass, case: str, user: str, params: dict[str, Any], code: str
) -> None:
    before = state(mass)
    asked = {"org_id": "org-school-2", "body": "Hello", **params}
    error = mass.refusal(user, "mass.create", **asked)
    assert error.code == code and error.message, error
    assert state(mass) == before and not mass.tasks.queue


def test_an_empty_audience_is_refused(mass: Mass) -> None:
    with transaction(mass.settings.database_url("directory")) as session:
        session.execute(
            text(
                "INSERT INTO orgs (sourced_id, name, type, parent_id) "
                "VALUES ('org-empty', 'Evening classes', 'department', 'org-school-2') ON CONFLICT DO NOTHING"
            )
        )
    try:
        before = state(mass)
        error = mass.refusal(ADMIN, "mass.create", org_id="org-school-2", org_ids=["org-empty"], body="Hi")
        assert error.code == "validation_failed" and "Nobody" in error.message
        assert state(mass) == before
    finally:
        with transaction(mass.settings.database_url("directory")) as session:
            session.execute(text("DELETE FROM orgs WHERE sourced_id = 'org-empty'"))


def test_someone_elses_job_is_not_found_and_cannot_be_cancelled(mass: Mass) -> None:
    job = send(mass, roles=["admin"])
    before = state(mass)
    for user in (DISTRICT_ADMIN, STUDENT):
        assert mass.refusal(user, "mass.get", job_id=job["id"]).code == "not_found"
        assert mass.refusal(user, "mass.cancel", job_id=job["id"]).code == "not_found"
    assert mass.refusal(ADMIN, "mass.cancel", job_id="not-a-job").code == "not_found"
    assert state(mass) == before
    mass.run()
    finished = mass.refusal(ADMIN, "mass.cancel", job_id=job["id"])
    assert finished.code == "not_allowed" and finished.message == "This mass message has already completed."


def test_two_jobs_from_one_school_are_two_conversations(mass: Mass) -> None:
    first, second = send(mass, roles=["admin"]), send(mass, roles=["admin"], body="And another thing.")
    mass.run()
    done = [mass.call(ADMIN, "mass.get", job_id=j["id"]) for j in (first, second)]
    assert [d["state"] for d in done] == ["completed", "completed"]
    assert done[0]["conversation_id"] != done[1]["conversation_id"]
