"""The thin slice end to end: HTTP in, RabbitMQ and PostgreSQL in the middle, Socket.IO out."""

from __future__ import annotations

import queue
from typing import Any

from tests.e2e.conftest import System

TEACHER, STUDENT = "user-t-001", "user-s-0001"


def test_a_message_sent_over_http_reaches_the_recipients_socket_and_its_history(system: System) -> None:
    inbox: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
    student = system.connect(STUDENT)
    student.on("message.created", lambda data: inbox.put(("message.created", data)))
    student.on("conversation.created", lambda data: inbox.put(("conversation.created", data)))
    try:
        teacher_http = system.session(TEACHER)
        sent = teacher_http.post(
            f"{system.api}/conversations",
            json={
                "recipients": [{"type": "user", "id": STUDENT}],
                "body": "Homework is on page 12",
                "client_id": "e2e-1",
            },
            timeout=10,
        )
        assert sent.status_code == 201, sent.text
        message = sent.json()["message"]

        events = [inbox.get(timeout=10), inbox.get(timeout=10)]
        assert [name for name, _ in events] == ["conversation.created", "message.created"]
        pushed = events[1][1]
        assert pushed["message"]["id"] == message["id"]
        assert pushed["message"]["body"] == "Homework is on page 12"
        assert pushed["message"]["sender"]["id"] == TEACHER

        student_http = system.session(STUDENT)
        conversation_id = sent.json()["conversation"]["id"]
        history = student_http.get(f"{system.api}/conversations/{conversation_id}/messages", timeout=10).json()
        assert [m["id"] for m in history["items"]] == [message["id"]]
        listed = student_http.get(f"{system.api}/conversations", timeout=10).json()["items"]
        assert listed[0]["id"] == conversation_id and listed[0]["unread_count"] == 1
        me = student_http.get(f"{system.api}/me", timeout=10).json()
        assert me["id"] == STUDENT and me["unread_total"] == 1
    finally:
        student.disconnect()


def test_a_reply_reaches_the_teacher_and_the_sender_too(system: System) -> None:
    teacher_inbox: queue.Queue[dict[str, Any]] = queue.Queue()
    student_inbox: queue.Queue[dict[str, Any]] = queue.Queue()
    teacher = system.connect(TEACHER)
    student = system.connect(STUDENT)
    teacher.on("message.created", teacher_inbox.put)
    student.on("message.created", student_inbox.put)
    try:
        student_http = system.session(STUDENT)
        conversation_id = student_http.get(f"{system.api}/conversations", timeout=10).json()["items"][0]["id"]
        reply = student_http.post(
            f"{system.api}/conversations/{conversation_id}/messages", json={"body": "Thank you!"}, timeout=10
        )
        assert reply.status_code == 201, reply.text
        assert teacher_inbox.get(timeout=10)["message"]["body"] == "Thank you!"
        assert student_inbox.get(timeout=10)["message"]["body"] == "Thank you!"
    finally:
        teacher.disconnect()
        student.disconnect()
