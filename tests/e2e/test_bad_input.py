"""Malformed, misshapen or unauthorised requests get API.md's error shape, change nothing, crash nothing."""

from __future__ import annotations

import os
import signal
import time

import jwt
import pytest
import requests

from shared.auth import issue_token
from tests.e2e.conftest import System

TEACHER, STUDENT = "user-t-001", "user-s-0001"


def _error(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


def _conversation_count(system: System, user_id: str) -> int:
    return len(system.session(user_id).get(f"{system.api}/conversations?limit=100", timeout=10).json()["items"])


@pytest.fixture(scope="module")
def teacher(system: System) -> requests.Session:
    return system.session(TEACHER)


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"{not json", 400, "malformed_request"),
        (b"[1, 2]", 400, "malformed_request"),
        (b"\xff\xfe", 400, "malformed_request"),
        (b'{"recipients": "everyone", "body": "hi"}', 422, "validation_failed"),
        (b'{"recipients": [{"type": "user", "id": "user-s-0001"}], "body": 42}', 422, "validation_failed"),
        (
            b'{"recipients": [{"type": "user", "id": "user-s-0001"}], "body": "hi", "admin": true}',
            422,
            "validation_failed",
        ),
        (b'{"recipients": [], "body": "hi"}', 422, "validation_failed"),
    ],
)
def test_a_malformed_or_misshapen_new_conversation_is_refused_and_creates_nothing(
    system: System, teacher: requests.Session, raw: bytes, status: int, code: str
) -> None:
    before = _conversation_count(system, TEACHER)
    response = teacher.post(
        f"{system.api}/conversations", data=raw, headers={"Content-Type": "application/json"}, timeout=10
    )
    _error(response, status, code)
    assert _conversation_count(system, TEACHER) == before


def test_a_message_over_ten_thousand_characters_is_refused_and_not_stored(
    system: System, teacher: requests.Session
) -> None:
    created = teacher.post(
        f"{system.api}/conversations", timeout=10, json={"recipients": [{"type": "user", "id": STUDENT}], "body": "Hi"}
    )
    conversation_id = created.json()["conversation"]["id"]
    error = _error(
        teacher.post(f"{system.api}/conversations/{conversation_id}/messages", json={"body": "x" * 10_001}, timeout=10),
        422,
        "validation_failed",
    )
    assert error["details"]["field"] == "body"
    ok = teacher.post(f"{system.api}/conversations/{conversation_id}/messages", json={"body": "x" * 10_000}, timeout=10)
    assert ok.status_code == 201
    history = teacher.get(f"{system.api}/conversations/{conversation_id}/messages", timeout=10).json()["items"]
    assert [len(m["body"]) for m in history][:2] == [10_000, 2]


def test_a_request_body_over_the_size_limit_is_refused(system: System, teacher: requests.Session) -> None:
    response = teacher.post(
        f"{system.api}/conversations",
        data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    _error(response, 413, "request_too_large")


def test_calls_without_a_valid_token_are_unauthenticated(system: System) -> None:
    s = system.settings
    expired = issue_token(s, TEACHER, ttl_seconds=-10)
    forged = jwt.encode(
        {"sub": TEACHER, "exp": int(time.time()) + 600, "iss": s.jwt_issuer, "aud": s.jwt_audience},
        "not-the-secret-but-long-enough-for-hs256",
        algorithm="HS256",
    )
    unsigned = jwt.encode({"sub": TEACHER, "exp": int(time.time()) + 600}, None, algorithm="none")
    for header in [
        None,
        "Bearer",
        "Bearer garbage",
        f"Bearer {expired}",
        f"Bearer {forged}",
        f"Bearer {unsigned}",
        f"Basic {issue_token(s, TEACHER)}",
    ]:
        headers = {"Authorization": header} if header else {}
        _error(requests.get(f"{system.api}/conversations", headers=headers, timeout=10), 401, "unauthenticated")


def test_unknown_ids_and_paths_are_not_found(system: System, teacher: requests.Session) -> None:
    _error(teacher.get(f"{system.api}/conversations/not-a-uuid", timeout=10), 404, "not_found")
    _error(
        teacher.get(f"{system.api}/conversations/00000000-0000-0000-0000-000000000000/messages", timeout=10),
        404,
        "not_found",
    )
    _error(
        teacher.post(
            f"{system.api}/conversations",
            json={"recipients": [{"type": "user", "id": "ghost"}], "body": "hi"},
            timeout=10,
        ),
        404,
        "not_found",
    )
    _error(requests.post(f"{system.api}/auth/dev-token", json={"user_id": "ghost"}, timeout=10), 404, "not_found")
    _error(teacher.get(f"{system.api}/no-such-thing", timeout=10), 404, "not_found")
    _error(teacher.delete(f"{system.api}/conversations", timeout=10), 405, "method_not_allowed")


def test_a_forged_page_cursor_is_refused(system: System, teacher: requests.Session) -> None:
    _error(teacher.get(f"{system.api}/conversations?cursor=forged.cursor", timeout=10), 400, "invalid_cursor")
    _error(teacher.get(f"{system.api}/conversations?limit=5000", timeout=10), 422, "validation_failed")


def test_the_openapi_document_and_health_are_open(system: System) -> None:
    doc = requests.get(f"{system.api}/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.") and "/conversations/{conversation_id}/messages" in doc["paths"]
    root = system.api.removesuffix("/api/v1")
    assert requests.get(f"{root}/healthz", timeout=10).status_code == 200
    assert requests.get(f"{root}/readyz", timeout=10).json()["status"] == "ready"
    assert b"gateway_requests_total" in requests.get(f"{root}/metrics", timeout=10).content


def test_a_service_that_is_down_gives_unavailable_and_nothing_crashes(
    system: System, teacher: requests.Session
) -> None:
    conversations = system.stack.processes["conversations"]
    os.kill(conversations.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        _error(teacher.get(f"{system.api}/conversations", timeout=10), 503, "unavailable")
        assert time.monotonic() - started < 5
        root = system.api.removesuffix("/api/v1")
        assert requests.get(f"{root}/readyz", timeout=10).status_code == 503
    finally:
        os.kill(conversations.pid, signal.SIGCONT)
    time.sleep(0.5)
    assert teacher.get(f"{system.api}/conversations", timeout=10).status_code == 200
    assert system.stack.restarts == {}, "a process exited"
