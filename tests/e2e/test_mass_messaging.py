"""Mass messages end to end with real Celery workers: queued at once, delivered in chunks with
progress pushed to the sender, seen by recipients live, one-way; and a worker killed in the middle
of a job leaves every recipient with the message exactly once."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from shared.config import Settings
from tests.e2e.conftest import System, running_system
from tests.support.inbox import Inbox
from tests.support.mass import deliveries
from tests.support.waiting import wait_for

ADMIN, DISTRICT_ADMIN, TEACHER, STUDENT = "user-a-002", "user-a-000", "user-t-001", "user-s-0001"
PUSHED = ("mass_message.progress", "conversation.created")


@pytest.fixture(scope="module")
def system(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    # Small chunks at 100 recipients a second, so a job lasts long enough to kill a worker or
    # cancel in the middle of it.
    with running_system(
        base_settings, tmp_path_factory.mktemp("logs"), mass_chunk_size=10, mass_recipients_per_second=100
    ) as running:
        granted = running.session(DISTRICT_ADMIN).post(
            f"{running.api}/admin/privileges", json={"user_id": ADMIN, "privilege": "mass_messaging"}, timeout=15
        )
        assert granted.status_code == 200, granted.text
        yield running


def job(system: System, job_id: str) -> dict[str, Any]:
    response = system.session(ADMIN).get(f"{system.api}/mass-messages/{job_id}", timeout=15)
    assert response.status_code == 200, response.text
    return response.json()


def queue(system: System, **params: Any) -> dict[str, Any]:
    body = {"org_id": "org-school-2", "body": "Snow day: school is closed tomorrow.", **params}
    response = system.session(ADMIN).post(f"{system.api}/mass-messages", json=body, timeout=15)
    assert response.status_code == 202, response.text
    return response.json()


def test_a_mass_message_is_queued_at_once_delivered_with_progress_and_cannot_be_answered(system: System) -> None:
    admin, teacher = system.connect(ADMIN), system.connect(TEACHER)
    progress, arrivals = Inbox(admin, PUSHED), Inbox(teacher, PUSHED)
    try:
        queued = queue(system, roles=["teacher"])
        assert queued["state"] == "queued" and queued["audience"] >= 50
        assert wait_for(lambda: job(system, queued["id"])["state"] == "completed", timeout=60)
        done = job(system, queued["id"])
        assert done["delivered"] + done["skipped"] == done["audience"] and done["failed"] == 0
        states = [e["job"]["state"] for name, e in progress.seen(1.0) if name == "mass_message.progress"]
        assert states[-1] == "completed" and "running" in states
        created = arrivals.next("conversation.created", lambda d: d["conversation"]["type"] == "mass")
        assert created["conversation"]["name"] == "Northwind Secondary School"
        assert created["conversation"]["unread_count"] == 1
    finally:
        admin.disconnect()
        teacher.disconnect()
    cid = done["conversation_id"]
    http = system.session(TEACHER)
    [message] = http.get(f"{system.api}/conversations/{cid}/messages", timeout=15).json()["items"]
    assert message["body"] == "Snow day: school is closed tomorrow."
    reply = http.post(f"{system.api}/conversations/{cid}/messages", json={"body": "Yay"}, timeout=15)
    assert reply.status_code == 409 and reply.json()["error"]["message"] == "Mass messages cannot be answered."
    assert system.session(STUDENT).get(f"{system.api}/conversations/{cid}", timeout=15).status_code == 404
    listed = system.session(ADMIN).get(f"{system.api}/mass-messages", timeout=15).json()["items"]
    assert queued["id"] in [j["id"] for j in listed]
    finished = system.session(ADMIN).post(f"{system.api}/mass-messages/{queued['id']}/cancel", timeout=15)
    assert finished.status_code == 409 and finished.json()["error"]["code"] == "not_allowed"


def test_a_worker_killed_in_the_middle_of_a_job_loses_and_repeats_nothing(system: System) -> None:
    worker = system.stack.processes["mass-worker-1"]
    queued = queue(system, roles=["student"], body="Exams start Monday.")
    assert wait_for(lambda: job(system, queued["id"])["delivered"] > 0, timeout=60)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    partial = job(system, queued["id"])
    assert partial["state"] == "running" and partial["delivered"] < partial["audience"], partial
    # The runner starts the worker again, as compose or Kubernetes would.
    assert wait_for(lambda: system.stack.processes["mass-worker-1"] is not worker, timeout=10)
    assert wait_for(lambda: job(system, queued["id"])["state"] == "completed", timeout=120), job(system, queued["id"])
    done = job(system, queued["id"])
    assert done["delivered"] + done["skipped"] == done["audience"] and done["failed"] == 0
    rows, people, messages = deliveries(system.settings, done["conversation_id"])
    assert rows == people == done["delivered"] and messages == 1
    # A recipient sees the job's conversation once.
    mine = system.session(STUDENT).get(f"{system.api}/conversations", params={"limit": 100}, timeout=15).json()
    assert [c["id"] for c in mine["items"]].count(done["conversation_id"]) == 1


def test_cancelling_a_running_job_stops_what_is_not_delivered(system: System) -> None:
    queued = queue(system, roles=["student"], body="Trip cancelled.")
    assert wait_for(lambda: job(system, queued["id"])["delivered"] > 0, timeout=60)
    cancelled = system.session(ADMIN).post(f"{system.api}/mass-messages/{queued['id']}/cancel", timeout=15)
    assert cancelled.status_code == 200, cancelled.text
    time.sleep(2)
    done = job(system, queued["id"])
    assert done["state"] == "cancelled" and done["delivered"] < done["audience"]
    rows, people, _ = deliveries(system.settings, done["conversation_id"])
    assert rows == people == done["delivered"]


@pytest.mark.parametrize(
    ("user", "body", "status", "code"),
    [
        (STUDENT, {"org_id": "org-school-2", "body": "hi"}, 403, "forbidden"),
        ("user-a-001", {"org_id": "org-school-1", "body": "hi"}, 403, "forbidden"),
        (ADMIN, {"org_id": "org-school-2", "org_ids": ["org-school-1"], "body": "hi"}, 403, "forbidden"),
        (ADMIN, {"org_id": "org-school-2", "body": ""}, 422, "validation_failed"),
        (ADMIN, {"org_id": "org-school-2", "body": "hi", "roles": ["pupils"]}, 422, "validation_failed"),
        (ADMIN, {"org_id": "org-school-2"}, 422, "validation_failed"),
    ],
)
def test_a_mass_message_that_may_not_go_is_refused_over_http(
    system: System, user: str, body: dict[str, Any], status: int, code: str
) -> None:
    def jobs() -> list[str]:
        return [j["id"] for j in system.session(ADMIN).get(f"{system.api}/mass-messages", timeout=15).json()["items"]]

    before = jobs()
    response = system.session(user).post(f"{system.api}/mass-messages", json=body, timeout=15)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert jobs() == before  # no job created
    assert requests.post(f"{system.api}/mass-messages", json=body, timeout=15).status_code == 401
