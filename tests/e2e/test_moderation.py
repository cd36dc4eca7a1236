"""Moderation end to end: a report lets a teacher into a student conversation, the teacher destroys
a message for good, the report closes and the access ends; blocking in a 1:1; safeguarding flags;
the audit log. Every step as the people involved see it, over HTTP and pushed events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import text

from deploy.local import DEFINITIONS
from shared.config import Settings
from shared.db import transaction
from tests.e2e.conftest import System, running_system
from tests.support.files import png
from tests.support.inbox import Inbox
from tests.support.waiting import wait_for

# Two students of Math 9B (class-001), taught by TEACHER; ADMIN governs their school; OTHER_ADMIN another.
PUPIL, CLASSMATE, TEACHER = "user-s-0001", "user-s-0013", "user-t-001"
ADMIN, OTHER_ADMIN, DISTRICT_ADMIN = "user-a-002", "user-a-001", "user-a-000"
PUSHED = (
    "message.created",
    "message.deleted",
    "conversation.created",
    "conversation.updated",
    "participant.removed",
    "report.created",
    "report.updated",
)


@pytest.fixture(scope="module")
def system(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    blobs = tmp_path_factory.mktemp("blobs")
    with running_system(base_settings, tmp_path_factory.mktemp("logs"), blob_dir=str(blobs)) as running:
        yield running


@pytest.fixture
def inboxes(system: System) -> Iterator[dict[str, Inbox]]:
    clients = {user: system.connect(user) for user in (PUPIL, CLASSMATE, TEACHER, ADMIN)}
    yield {user: Inbox(client, PUSHED) for user, client in clients.items()}
    for client in clients.values():
        client.disconnect()


def ok(response: requests.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def refused(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return error


def direct(system: System, sender: str, to: str, body: str, **extra: Any) -> dict[str, Any]:
    return ok(
        system.session(sender).post(
            f"{system.api}/conversations",
            json={"recipients": [{"type": "user", "id": to}], "body": body, **extra},
            timeout=15,
        ),
        201,
    )


def everything_stored(system: System) -> str:
    """Every row of every table of every service, and every stored blob, as one text."""
    parts = []
    for name in DEFINITIONS:
        with transaction(system.settings.database_url(name)) as session:
            tables = session.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars()
            for table in list(tables):
                rows = session.execute(text(f'SELECT CAST(t AS text) FROM "{table}" t')).scalars()
                parts += [f"{name}.{table}: {row}" for row in rows]
    for blob in Path(system.settings.blob_dir).rglob("*"):
        if blob.is_file():
            parts.append(blob.read_bytes().decode("latin-1"))
    return "\n".join(parts)


def test_a_report_lets_the_teacher_in_and_a_moderator_delete_destroys_the_message_everywhere(
    system: System, inboxes: dict[str, Inbox]
) -> None:
    api, secret = system.api, f"nasty{uuid.uuid4().hex[:10]}"
    pupil, classmate, teacher = system.session(PUPIL), system.session(CLASSMATE), system.session(TEACHER)
    upload = pupil.post(
        f"{api}/attachments", files=[("file", (f"{secret}.png", png() + secret.encode(), "image/png"))], timeout=30
    )
    [picture] = ok(upload, 201)["items"]
    started = direct(system, PUPIL, CLASSMATE, f"you are {secret}", attachment_ids=[picture["id"]])
    cid, mid = started["conversation"]["id"], started["message"]["id"]
    ok(pupil.patch(f"{api}/messages/{mid}", json={"body": f"you really are {secret}"}, timeout=15))
    ok(pupil.post(f"{api}/conversations/{cid}/messages", json={"body": "an ordinary message"}, timeout=15), 201)

    # A student-only conversation is invisible to staff.
    refused(teacher.get(f"{api}/conversations/{cid}", timeout=15), 404, "not_found")
    refused(teacher.get(f"{api}/attachments/{picture['id']}", timeout=15), 404, "not_found")

    # The classmate reports the message; the client learns whom they may choose.
    offered = ok(classmate.get(f"{api}/reports/recipients", params={"message_id": mid}, timeout=15))["items"]
    chosen = {s["user_id"]: s for s in offered}
    assert chosen[TEACHER]["reason"].startswith("Teacher in ") and "Math 9B" in chosen[TEACHER]["reason"]
    assert ADMIN in chosen and DISTRICT_ADMIN in chosen and OTHER_ADMIN not in chosen
    report = ok(
        classmate.post(
            f"{api}/reports", json={"message_id": mid, "to_user_id": TEACHER, "reason": "Name calling"}, timeout=15
        ),
        201,
    )
    assert report["state"] == "open" and report["reporter"]["id"] == CLASSMATE
    pushed = inboxes[TEACHER].next("report.created")
    assert pushed["report"]["id"] == report["id"] and pushed["report"]["message_id"] == mid
    joined = inboxes[TEACHER].next("conversation.created", lambda d: d["conversation"]["id"] == cid)
    assert joined["conversation"]["through_report"] is True

    # Through the report the teacher reads, searches, downloads and writes, without being listed.
    seen = ok(teacher.get(f"{api}/conversations/{cid}", timeout=15))
    assert seen["participant_count"] == 2 and "delete_messages" in seen["can"] and "leave" not in seen["can"]
    history = ok(teacher.get(f"{api}/conversations/{cid}/messages", timeout=15))["items"]
    assert secret in history[-1]["body"]
    hits = ok(teacher.get(f"{api}/conversations/{cid}/search", params={"q": secret}, timeout=15))
    assert hits["items"], hits
    assert teacher.get(f"{api}/attachments/{picture['id']}", timeout=15).status_code == 200
    for user in (PUPIL, CLASSMATE):
        listed = ok(system.session(user).get(f"{api}/conversations/{cid}/participants", timeout=15))["items"]
        assert {p["user_id"] for p in listed} == {PUPIL, CLASSMATE}
        assert ok(system.session(user).get(f"{api}/conversations/{cid}", timeout=15))["participant_count"] == 2
    assert ok(pupil.get(f"{api}/reports", timeout=15))["items"] == []  # only the reporter and the staff see it
    refused(pupil.get(f"{api}/reports/{report['id']}", timeout=15), 404, "not_found")
    ok(teacher.post(f"{api}/conversations/{cid}/messages", json={"body": "Please be kind."}, timeout=15), 201)
    refused(teacher.delete(f"{api}/conversations/{cid}/participants/{PUPIL}", timeout=15), 409, "not_allowed")

    # The moderator delete: everyone sees who removed it, in real time; the content is gone everywhere.
    gone = ok(teacher.delete(f"{api}/messages/{mid}", timeout=15))
    assert gone["deleted"] == {"by": "moderator", "by_name": "Amara Tuilagi"} and gone["body"] == ""
    for user in (PUPIL, CLASSMATE):
        event = inboxes[user].next("message.deleted", lambda d: d["message"]["id"] == mid)
        assert event["message"]["deleted"]["by_name"] == "Amara Tuilagi" and event["message"]["attachments"] == []
    refused(teacher.delete(f"{api}/messages/{mid}", timeout=15), 409, "not_allowed")
    refused(pupil.get(f"{api}/attachments/{picture['id']}", timeout=15), 404, "not_found")
    assert wait_for(lambda: secret not in everything_stored(system), timeout=15), [
        line[:300] for line in everything_stored(system).splitlines() if secret in line
    ]
    cursorless = ok(classmate.get(f"{api}/sync", timeout=15))
    assert cursorless["cursor"]

    # The reporter withdraws: the teacher's access ends with the report, and a second withdraw is refused.
    withdrawn = ok(classmate.post(f"{api}/reports/{report['id']}/withdraw", timeout=15))
    assert withdrawn["state"] == "withdrawn"
    inboxes[TEACHER].next("participant.removed", lambda d: d["conversation_id"] == cid and d["user_id"] == TEACHER)
    refused(teacher.get(f"{api}/conversations/{cid}", timeout=15), 404, "not_found")
    refused(teacher.get(f"{api}/conversations/{cid}/messages", timeout=15), 404, "not_found")
    refused(classmate.post(f"{api}/reports/{report['id']}/withdraw", timeout=15), 409, "not_allowed")
    refused(teacher.post(f"{api}/reports/{report['id']}/resolve", timeout=15), 409, "not_allowed")
    # The students never heard of any of it but the removal itself.
    names = inboxes[PUPIL].names()
    assert "report.created" not in names and "report.updated" not in names

    # The audit log keeps who did what through which report, without the content.
    admin = system.session(ADMIN)

    def audit() -> list[dict[str, Any]]:
        return ok(admin.get(f"{api}/admin/audit", params={"conversation_id": cid}, timeout=15))["items"]

    assert wait_for(lambda: {"report.created", "message.deleted", "report.withdrawn"} <= {e["action"] for e in audit()})
    deleted = next(e for e in audit() if e["action"] == "message.deleted")
    assert deleted["actor"]["id"] == TEACHER and deleted["report_ids"] == [report["id"]]
    assert deleted["message_id"] == mid and deleted["subject_id"] == PUPIL
    assert ok(admin.get(f"{api}/admin/audit", params={"report_id": report["id"]}, timeout=15))["items"]
    assert ok(system.session(OTHER_ADMIN).get(f"{api}/admin/audit", params={"conversation_id": cid}))["items"] == []
    refused(pupil.get(f"{api}/admin/audit", timeout=15), 403, "forbidden")
    refused(admin.get(f"{api}/admin/audit", params={"action": "nonsense"}, timeout=15), 422, "validation_failed")


def test_a_blocked_student_sees_the_conversation_as_before_but_cannot_send(system: System) -> None:
    api = system.api
    pupil, classmate = system.session(PUPIL), system.session(CLASSMATE)
    cid = direct(system, CLASSMATE, PUPIL, "hi there")["conversation"]["id"]
    group = ok(
        pupil.post(
            f"{api}/conversations",
            json={
                "recipients": [{"type": "user", "id": CLASSMATE}, {"type": "user", "id": TEACHER}],
                "mode": "group",
                "body": "group hello",
            },
            timeout=15,
        ),
        201,
    )["conversation"]["id"]
    blocked = ok(pupil.post(f"{api}/conversations/{cid}/block", timeout=15))
    assert blocked["blocked"] is True and "unblock" in blocked["can"]
    seen_by_classmate = ok(classmate.get(f"{api}/conversations/{cid}", timeout=15))
    assert seen_by_classmate["blocked"] is False and seen_by_classmate["status"] == "open"
    error = refused(
        classmate.post(f"{api}/conversations/{cid}/messages", json={"body": "hello?"}, timeout=15),
        422,
        "recipient_unavailable",
    )
    assert error["message"] == "Javier Kowalski is not available"
    refused(
        classmate.post(
            f"{api}/conversations", json={"recipients": [{"type": "user", "id": PUPIL}], "body": "hey"}, timeout=15
        ),
        422,
        "recipient_unavailable",
    )
    refused(pupil.post(f"{api}/conversations/{cid}/messages", json={"body": "x"}, timeout=15), 409, "not_allowed")
    ok(classmate.post(f"{api}/conversations/{group}/messages", json={"body": "still fine here"}, timeout=15), 201)
    refused(pupil.post(f"{api}/conversations/{group}/block", timeout=15), 409, "not_allowed")
    refused(system.session(TEACHER).post(f"{api}/conversations/{group}/block", timeout=15), 409, "not_allowed")
    ok(pupil.post(f"{api}/conversations/{cid}/unblock", timeout=15))
    ok(classmate.post(f"{api}/conversations/{cid}/messages", json={"body": "hello again"}, timeout=15), 201)


def test_a_message_matching_the_safeguarding_list_reports_itself_to_the_leads_without_telling_the_sender(
    system: System, inboxes: dict[str, Inbox]
) -> None:
    api, admin = system.api, system.session(ADMIN)
    saved = ok(
        admin.put(
            f"{api}/admin/safeguarding/org-school-2",
            json={"phrases": ["hurt myself", "Fünf"], "lead_ids": [ADMIN]},
            timeout=15,
        )
    )
    assert saved["phrases"] == ["hurt myself", "Fünf"] and saved["lead_ids"] == [ADMIN]
    refused(
        system.session(OTHER_ADMIN).put(f"{api}/admin/safeguarding/org-school-2", json={"phrases": ["x"]}, timeout=15),
        403,
        "forbidden",
    )
    refused(system.session(PUPIL).get(f"{api}/admin/safeguarding/org-school-2", timeout=15), 403, "forbidden")
    harmless = direct(system, PUPIL, CLASSMATE, "I will not hurt myselfish people")
    flagged = ok(
        system.session(PUPIL).post(
            f"{api}/conversations/{harmless['conversation']['id']}/messages",
            json={"body": "Sometimes I want to HURT\nmyself."},
            timeout=15,
        ),
        201,
    )
    report = inboxes[ADMIN].next("report.created", timeout=15)["report"]
    assert report["kind"] == "safeguarding" and report["message_id"] == flagged["id"]
    assert report["reporter"] is None and report["matched"] == ["hurt myself"]
    assert inboxes[ADMIN].next("conversation.created")["conversation"]["id"] == harmless["conversation"]["id"]
    history = ok(admin.get(f"{api}/conversations/{harmless['conversation']['id']}/messages", timeout=15))["items"]
    assert history[0]["id"] == flagged["id"]
    listed = ok(admin.get(f"{api}/reports", params={"state": "open"}, timeout=15))["items"]
    assert [r["id"] for r in listed if r["kind"] == "safeguarding"] == [report["id"]]
    assert ok(system.session(PUPIL).get(f"{api}/reports", timeout=15))["items"] == []
    assert "report.created" not in inboxes[PUPIL].names()
    resolved = ok(admin.post(f"{api}/reports/{report['id']}/resolve", json={"note": "Talked to Javier"}, timeout=15))
    assert resolved["state"] == "resolved" and resolved["closed_by"]["id"] == ADMIN
    refused(admin.get(f"{api}/conversations/{harmless['conversation']['id']}", timeout=15), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "raw", "status", "code"),
    [
        ("POST", "/reports", b"{not json", 400, "malformed_request"),
        ("POST", "/reports", b'["message_id"]', 400, "malformed_request"),
        ("POST", "/reports", b'{"message_id": 5, "to_user_id": "user-t-001", "reason": "x"}', 422, "validation_failed"),
        ("POST", "/reports", b'{"message_id": "m", "to_user_id": "user-t-001", "extra": 1}', 422, "validation_failed"),
        ("POST", "/reports", b'{"to_user_id": "user-t-001", "reason": "x"}', 422, "validation_failed"),
        ("POST", "/reports/not-a-report/withdraw", b"", 404, "not_found"),
        ("POST", "/reports/6f1c2a3e-0000-4000-8000-000000000000/resolve", b"{}", 404, "not_found"),
        ("POST", "/reports/6f1c2a3e-0000-4000-8000-000000000000/resolve", b'{"note": 3}', 422, "validation_failed"),
        ("GET", "/reports?state=everything", b"", 422, "validation_failed"),
        ("GET", "/reports?cursor=forged", b"", 400, "invalid_cursor"),
        ("GET", "/reports/recipients", b"", 422, "validation_failed"),
        ("PUT", "/admin/safeguarding/org-school-2", b'{"phrases": "kill"}', 422, "validation_failed"),
        ("PUT", "/admin/safeguarding/org-school-2", b'{"phrases": ["!!!"]}', 422, "validation_failed"),
        (
            "PUT",
            "/admin/safeguarding/org-school-2",
            b'{"phrases": [], "lead_ids": ["user-s-0001"]}',
            422,
            "validation_failed",
        ),
        ("PUT", "/admin/safeguarding/no-such-org", b'{"phrases": []}', 403, "forbidden"),
        ("POST", "/conversations/not-a-conversation/block", b"", 404, "not_found"),
    ],
)
def test_malformed_moderation_requests_get_clear_errors_and_change_nothing(
    system: System, method: str, path: str, raw: bytes, status: int, code: str
) -> None:
    admin = system.session(ADMIN)
    before = ok(admin.get(f"{system.api}/admin/safeguarding/org-school-2", timeout=15))
    user = ADMIN if path.startswith("/admin") else CLASSMATE
    response = system.session(user).request(
        method, f"{system.api}{path}", data=raw, headers={"Content-Type": "application/json"}, timeout=15
    )
    error = refused(response, status, code)
    assert error["message"]
    assert ok(admin.get(f"{system.api}/admin/safeguarding/org-school-2", timeout=15)) == before
    assert requests.post(f"{system.api}/reports", json={}, timeout=15).status_code == 401
