"""Bad uploads, bad names, bad attachment ids: each gets API.md's error shape and leaves nothing behind.

"Nothing behind" is checked where it lives: no file under the blob directory (a finished blob or
a half-written `.upload-*`) and no row in the attachments database. Multipart bodies are built
by hand, so a test controls every byte of a file name, and a cut-off upload is sent over a raw
socket.
"""

from __future__ import annotations

import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import text

from shared.config import Settings
from shared.db import transaction
from tests.e2e.conftest import System, running_system
from tests.support.files import ELF, png, wav
from tests.support.waiting import wait_for

TEACHER, STUDENT = "user-t-001", "user-s-0001"
BOUNDARY = "imtest-7MA4YWxkTrZu0gW"


# --- Multipart bodies, byte by byte -------------------------------------------------------------------


def part(content: bytes, *, filename: bytes | None = b"file.png", name: bytes = b"file", ctype: bytes = b"") -> bytes:
    """One part: `filename` goes into the Content-Disposition exactly as given (None: a plain field)."""
    disposition = b'Content-Disposition: form-data; name="' + name + b'"'
    if filename is not None:
        disposition += b'; filename="' + filename + b'"'
    headers = disposition + b"\r\n" + (b"Content-Type: " + ctype + b"\r\n" if ctype else b"")
    return b"--" + BOUNDARY.encode() + b"\r\n" + headers + b"\r\n" + content + b"\r\n"


def multipart(*parts: bytes) -> bytes:
    return b"".join(parts) + b"--" + BOUNDARY.encode() + b"--\r\n"


def post_raw(http: requests.Session, api: str, body: bytes, content_type: str | None = None) -> requests.Response:
    content_type = content_type or f"multipart/form-data; boundary={BOUNDARY}"
    return http.post(f"{api}/attachments", data=body, headers={"Content-Type": content_type}, timeout=30)


# --- What is left behind --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def system(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    blobs = tmp_path_factory.mktemp("blobs")
    with running_system(base_settings, tmp_path_factory.mktemp("logs"), blob_dir=blobs) as running:
        yield running


@pytest.fixture(scope="module")
def teacher(system: System) -> requests.Session:
    return system.session(TEACHER)


@pytest.fixture(scope="module")
def student(system: System) -> requests.Session:
    return system.session(STUDENT)


def blob_files(system: System) -> set[str]:
    """Every file under the blob directory, finished or half-written."""
    root = Path(system.settings.blob_dir)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def rows(system: System) -> dict[str, Any]:
    """The attachments table: id -> row."""
    with transaction(system.settings.database_url("attachments")) as session:
        found = session.execute(text("SELECT id, owner_id, blob_key, name, size, content_type, state FROM attachments"))
        return {str(r.id): r for r in found}


def state(system: System) -> tuple[set[str], set[str]]:
    return blob_files(system), set(rows(system))


def message_count(system: System) -> int:
    with transaction(system.settings.database_url("conversations")) as session:
        return session.execute(text("SELECT count(*) FROM messages")).scalar_one()


def error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    """API.md's error shape, with this status and code; the error."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"].strip()
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


def accepted(system: System, before: tuple[set[str], set[str]], response: requests.Response) -> list[dict[str, Any]]:
    """A 201 whose items are exactly what was added: one row and one blob each."""
    assert response.status_code == 201, response.text
    items = response.json()["items"]
    files, ids = state(system)
    assert ids - before[1] == {item["id"] for item in items}
    table = rows(system)
    assert files - before[0] == {table[item["id"]].blob_key for item in items}
    for item in items:
        assert table[item["id"]].name == item["name"] and table[item["id"]].state == "uploaded"
    return items


# --- Files --------------------------------------------------------------------------------------------


def test_an_empty_file_is_refused_and_leaves_nothing(system: System, teacher: requests.Session) -> None:
    before = state(system)
    refused = error(
        post_raw(teacher, system.api, multipart(part(b"", filename=b"empty.png"))), 422, "validation_failed"
    )
    assert "empty.png" in refused["message"] and "empty" in refused["message"]
    assert state(system) == before


@pytest.mark.parametrize(
    ("raw_name", "shown"),
    [
        (b"../../x.png", "x.png"),
        (b"/etc/passwd.png", "passwd.png"),
        # A Windows path as browsers and urllib3 send it (HTML form encoding: backslashes as they are) ...
        (b"C:\\a\\b.png", "b.png"),
        # ... and as a client that escapes backslashes the RFC 9110 way sends it.
        (b"C:\\\\a\\\\b.png", "b.png"),
        (b"..\\..\\windows\\x.png", "x.png"),
        (b"a\x01b\x7fc\td\x1b.png", "abcd.png"),
        ("invoice\u202egnp.exe.png".encode(), "invoicegnp.exe.png"),  # a right-to-left override, dropped
        (b"caf\xe9.png", "caf\u00e9.png"),  # ISO-8859-1, not UTF-8
        ("caf\u00e9 \u2013 \u65e5\u672c.png".encode(), "caf\u00e9 \u2013 \u65e5\u672c.png"),
        (b"  .hidden.png  ", "hidden.png"),
    ],
    ids=[
        "dot-dot",
        "absolute",
        "windows",
        "windows-escaped",
        "windows-dot-dot",
        "controls",
        "rtl",
        "latin-1",
        "utf-8",
        "dots",
    ],
)
def test_a_file_name_is_cut_to_its_last_component_and_cleaned(
    system: System, teacher: requests.Session, raw_name: bytes, shown: str
) -> None:
    before = state(system)
    [item] = accepted(system, before, post_raw(teacher, system.api, multipart(part(png(), filename=raw_name))))
    assert item["name"] == shown
    assert item["content_type"] == "image/png" and item["size"] == len(png())
    got = teacher.get(f"{system.api}/attachments/{item['id']}", timeout=15)
    assert got.status_code == 200 and got.content == png()
    assert "/" not in got.headers["Content-Disposition"].split("filename*=")[0]


def test_a_name_in_rfc_2231_form_is_read(system: System, teacher: requests.Session) -> None:
    before = state(system)
    disposition = b"Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''caf%C3%A9.png"
    body = f"--{BOUNDARY}\r\n".encode() + disposition + b"\r\n\r\n" + png() + f"\r\n--{BOUNDARY}--\r\n".encode()
    [item] = accepted(system, before, post_raw(teacher, system.api, body))
    assert item["name"] == "caf\u00e9.png"


def test_a_name_of_a_thousand_characters_is_shortened_keeping_its_extension(
    system: System, teacher: requests.Session
) -> None:
    before = state(system)
    long_name = "r" * 996 + ".png"
    [item] = accepted(
        system, before, post_raw(teacher, system.api, multipart(part(png(), filename=long_name.encode())))
    )
    assert len(item["name"]) == 255
    assert item["name"] == "r" * 251 + ".png"
    got = teacher.get(f"{system.api}/attachments/{item['id']}", timeout=15)
    assert got.status_code == 200 and ".png" in got.headers["Content-Disposition"]


@pytest.mark.parametrize("raw_name", [b"..", b"/", b".", b"../..", b"C:\\", b"\x01\x02", b"   ", b""])
def test_a_name_that_is_only_folders_dots_or_nothing_is_refused(
    system: System, teacher: requests.Session, raw_name: bytes
) -> None:
    before = state(system)
    error(post_raw(teacher, system.api, multipart(part(png(), filename=raw_name))), 422, "validation_failed")
    assert state(system) == before


def test_a_declared_type_that_lies_is_refused_by_content(system: System, teacher: requests.Session) -> None:
    before = state(system)
    response = post_raw(teacher, system.api, multipart(part(ELF, filename=b"holiday.png", ctype=b"image/png")))
    refused = error(response, 422, "unsupported_file_type")
    assert refused["message"] == "Sorry, you can't send holiday.png"
    assert refused["details"]["name"] == "holiday.png"
    assert state(system) == before


def test_the_refusal_names_the_cleaned_name(system: System, teacher: requests.Session) -> None:
    before = state(system)
    response = post_raw(teacher, system.api, multipart(part(ELF, filename=b"../bin/cat\x07.png", ctype=b"image/png")))
    assert error(response, 422, "unsupported_file_type")["message"] == "Sorry, you can't send cat.png"
    assert state(system) == before


# --- Bodies -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        multipart(part(b"just some text", filename=None, name=b"note")),  # a text field, no file
        multipart(part(b"just some text", filename=None)),  # a text field named "file"
        multipart(),  # no part at all
        multipart(part(png(), name=b"attachment")),  # a file under another name
        multipart(part(png(), filename=b"fine.png"), part(png(), filename=b"also.png", name=b"files")),
        multipart(part(png(), filename=b"fine.png"), part(b"hello", filename=None, name=b"caption")),
    ],
    ids=["text-field", "text-field-named-file", "no-parts", "other-name", "file-then-other-name", "file-then-field"],
)
def test_a_body_without_proper_file_parts_is_a_validation_error(
    system: System, teacher: requests.Session, body: bytes
) -> None:
    before = state(system)
    error(post_raw(teacher, system.api, body), 422, "validation_failed")
    assert state(system) == before


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"file": "x.png"}', "application/json"),
        (b"file=x.png", "application/x-www-form-urlencoded"),
        (png(), "image/png"),
        (multipart(part(png())), "multipart/form-data"),  # no boundary
        (multipart(part(png())), "multipart/form-data; boundary=something-else"),
        (b"--" + BOUNDARY.encode() + b"\r\nthis is no header block", None),
        (b"", None),
    ],
    ids=["json", "urlencoded", "raw-bytes", "no-boundary", "wrong-boundary", "garbage", "empty"],
)
def test_a_body_that_is_not_multipart_is_malformed(
    system: System, teacher: requests.Session, body: bytes, content_type: str | None
) -> None:
    before = state(system)
    error(post_raw(teacher, system.api, body, content_type), 400, "malformed_request")
    assert state(system) == before


def test_more_than_ten_files_are_refused_and_none_is_kept(system: System, teacher: requests.Session) -> None:
    before = state(system)
    files = [part(png(), filename=f"page-{i}.png".encode()) for i in range(11)]
    refused = error(post_raw(teacher, system.api, multipart(*files)), 422, "validation_failed")
    assert refused["details"].get("max_files") == 10
    assert state(system) == before
    # Ten is fine.
    items = accepted(system, before, post_raw(teacher, system.api, multipart(*files[:10])))
    assert [item["name"] for item in items] == [f"page-{i}.png" for i in range(10)]


def test_a_refused_file_among_several_takes_the_others_with_it(system: System, teacher: requests.Session) -> None:
    before = state(system)
    body = multipart(part(png(), filename=b"a.png"), part(png(), filename=b"b.png"), part(ELF, filename=b"c.png"))
    error(post_raw(teacher, system.api, body), 422, "unsupported_file_type")
    assert state(system) == before


def _send_cut_off(system: System, body: bytes, sent: int, *, reset: bool, meanwhile: Callable[[], bool]) -> None:
    """POST `body` declaring its full length, send only its first `sent` bytes, wait until
    `meanwhile()` holds (the gateway has stored what it could), then hang up: a plain close, or a
    reset."""
    head = (
        "POST /api/v1/attachments HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{system.settings.gateway_port}\r\n"
        f"Authorization: Bearer {system.token(TEACHER)}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", system.settings.gateway_port), timeout=10)
    try:
        sock.sendall(head + body[:sent])
        assert wait_for(meanwhile), "the gateway never started storing the upload"
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
@pytest.mark.parametrize("where", ["first-file", "second-file"])
def test_an_upload_cut_off_in_a_file_leaves_nothing_and_the_gateway_goes_on(
    system: System, teacher: requests.Session, where: str, reset: bool
) -> None:
    before = state(system)
    log = system.log_dir / "gateway.log"
    log_size = log.stat().st_size
    big = wav(3 * 1024 * 1024)  # many reads' worth, so the cut falls mid-stream
    if where == "first-file":
        body = multipart(part(big, filename=b"lecture.wav"))
        sent, registered = len(body) // 2, 0
    else:
        first = part(png(), filename=b"slide.png")
        body = multipart(first, part(big, filename=b"lecture.wav"))
        sent, registered = len(first) + len(big) // 2, 1

    def half_way() -> bool:
        """The earlier files registered, the cut one half-written to a temporary file."""
        files, ids = state(system)
        partial = [f for f in files - before[0] if f.startswith(".upload-")]
        return len(partial) == 1 and len(ids - before[1]) == registered

    _send_cut_off(system, body, sent, reset=reset, meanwhile=half_way)

    assert wait_for(lambda: state(system) == before), (state(system), before)
    time.sleep(0.3)  # anything still to happen would have by now
    assert state(system) == before
    assert system.stack.restarts == {}, "a process exited"
    # The cut-off is an expected event, not a crash of the request.
    with open(log, "rb") as f:
        f.seek(log_size)
        assert b"Traceback" not in f.read()
    # And the gateway still serves uploads.
    again = state(system)
    [item] = accepted(system, again, post_raw(teacher, system.api, multipart(part(png(), filename=b"after.png"))))
    assert item["name"] == "after.png"


# --- Attaching ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def conversation(system: System, teacher: requests.Session) -> str:
    created = teacher.post(
        f"{system.api}/conversations",
        json={"recipients": [{"type": "user", "id": STUDENT}], "body": "Files follow"},
        timeout=15,
    )
    assert created.status_code == 201, created.text
    return created.json()["conversation"]["id"]


def upload_png(system: System, http: requests.Session, name: str = "pic.png") -> dict[str, Any]:
    response = post_raw(http, system.api, multipart(part(png(), filename=name.encode())))
    assert response.status_code == 201, response.text
    return response.json()["items"][0]


def send(system: System, http: requests.Session, conversation: str, ids: list[Any]) -> requests.Response:
    return http.post(
        f"{system.api}/conversations/{conversation}/messages",
        json={"body": "see attached", "attachment_ids": ids},
        timeout=15,
    )


def attachment_state(system: System, attachment_id: str) -> str:
    return rows(system)[attachment_id].state


def test_attaching_an_unknown_id_is_not_found_and_stores_no_message(
    system: System, teacher: requests.Session, conversation: str
) -> None:
    before = message_count(system)
    error(send(system, teacher, conversation, [str(uuid.uuid4())]), 404, "not_found")
    started = teacher.post(
        f"{system.api}/conversations",
        json={"recipients": [{"type": "user", "id": STUDENT}], "body": "x", "attachment_ids": [str(uuid.uuid4())]},
        timeout=15,
    )
    error(started, 404, "not_found")
    assert message_count(system) == before


def test_attaching_is_all_or_nothing(system: System, teacher: requests.Session, conversation: str) -> None:
    mine = upload_png(system, teacher)
    before = message_count(system)
    error(send(system, teacher, conversation, [mine["id"], str(uuid.uuid4())]), 404, "not_found")
    assert message_count(system) == before
    assert attachment_state(system, mine["id"]) == "uploaded"
    sent = send(system, teacher, conversation, [mine["id"]])
    assert sent.status_code == 201, sent.text
    assert sent.json()["attachments"] == [mine]


def test_someone_elses_upload_cannot_be_attached_and_stays_theirs(
    system: System, teacher: requests.Session, student: requests.Session, conversation: str
) -> None:
    theirs = upload_png(system, student, "students.png")
    before = message_count(system)
    error(send(system, teacher, conversation, [theirs["id"]]), 404, "not_found")
    assert message_count(system) == before
    assert attachment_state(system, theirs["id"]) == "uploaded"
    # Nor may the teacher download it before it is sent.
    error(teacher.get(f"{system.api}/attachments/{theirs['id']}", timeout=15), 404, "not_found")
    assert send(system, student, conversation, [theirs["id"]]).status_code == 201


def test_a_file_already_sent_cannot_be_attached_again(
    system: System, teacher: requests.Session, conversation: str
) -> None:
    used = upload_png(system, teacher, "once.png")
    assert send(system, teacher, conversation, [used["id"]]).status_code == 201
    before = message_count(system)
    refused = error(send(system, teacher, conversation, [used["id"]]), 409, "not_allowed")
    assert "once.png" in refused["message"]
    assert message_count(system) == before


@pytest.mark.parametrize(
    "ids",
    [
        ["not-a-uuid"],
        ["../../etc/passwd"],
        [""],
        [str(uuid.uuid4()) for _ in range(11)],
        [str(uuid.uuid4()) for _ in range(21)],
        [42],
        [None],
        "00000000-0000-0000-0000-000000000000",
    ],
    ids=["not-a-uuid", "path", "empty", "eleven", "twenty-one", "number", "null", "not-a-list"],
)
def test_malformed_attachment_ids_are_a_validation_error_and_store_no_message(
    system: System, teacher: requests.Session, conversation: str, ids: Any
) -> None:
    before = message_count(system)
    error(send(system, teacher, conversation, ids), 422, "validation_failed")
    assert message_count(system) == before


def test_a_send_that_fails_after_claiming_gives_the_files_back(
    system: System, teacher: requests.Session, conversation: str
) -> None:
    mine = upload_png(system, teacher, "retry.png")
    before = message_count(system)
    # A conversation that does not exist: the files were claimed, then the send failed.
    error(send(system, teacher, str(uuid.uuid4()), [mine["id"]]), 404, "not_found")
    assert message_count(system) == before
    assert attachment_state(system, mine["id"]) == "uploaded"
    assert send(system, teacher, conversation, [mine["id"]]).status_code == 201


# --- Downloading --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "attachment_id",
    [str(uuid.uuid4()), "not-a-uuid", "..", "%2e%2e%2fetc%2fpasswd", "0" * 500, "00000000-0000-0000-0000-000000000000"],
    ids=["unknown", "malformed", "dot-dot", "encoded-path", "long", "zero"],
)
def test_downloading_an_unknown_or_malformed_id_is_not_found(
    system: System, teacher: requests.Session, attachment_id: str
) -> None:
    error(teacher.get(f"{system.api}/attachments/{attachment_id}", timeout=15), 404, "not_found")
