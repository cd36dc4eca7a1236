"""Files on messages, end to end: uploaded through the gateway, judged by content, sent, served safely."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.config import Settings
from tests.e2e.conftest import System, running_system
from tests.support.files import ELF, png, wav
from tests.support.waiting import wait_for

TEACHER, STUDENT, CLASSMATE = "user-t-001", "user-s-0001", "user-s-0013"
OUTSIDER = "user-s-0015"  # a student of another school


SCRIPT = b"#!/bin/sh\nrm -rf ~\n"


@pytest.fixture(scope="module")
def system(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    blobs = tmp_path_factory.mktemp("blobs")
    with running_system(base_settings, tmp_path_factory.mktemp("logs"), blob_dir=blobs) as running:
        yield running


def _blobs(system: System) -> set[str]:
    root = Path(system.settings.blob_dir)
    return {p.name for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def upload(http: requests.Session, api: str, *files: tuple[str, bytes, str]) -> requests.Response:
    return http.post(f"{api}/attachments", files=[("file", f) for f in files], timeout=60)


def _uploaded(system: System, user: str, *files: tuple[str, bytes, str]) -> list[dict[str, Any]]:
    response = upload(system.session(user), system.api, *files)
    assert response.status_code == 201, response.text
    return response.json()["items"]


def _direct(system: System, sender: str, to: str, body: str, ids: list[str]) -> dict[str, Any]:
    response = system.session(sender).post(
        f"{system.api}/conversations",
        json={"recipients": [{"type": "user", "id": to}], "body": body, "attachment_ids": ids},
        timeout=15,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_a_file_goes_up_with_a_message_and_only_participants_can_download_it(system: System) -> None:
    [picture] = _uploaded(system, TEACHER, ("diagram.png", png(), "application/octet-stream"))
    assert picture["content_type"] == "image/png" and picture["name"] == "diagram.png"
    sent = _direct(system, TEACHER, STUDENT, "", [picture["id"]])  # files without text are allowed
    assert sent["message"]["attachments"] == [picture]

    got = system.session(STUDENT).get(f"{system.api}/attachments/{picture['id']}", timeout=15)
    assert got.status_code == 200 and got.content == png()
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in got.headers["Content-Security-Policy"]
    assert got.headers["Content-Disposition"].startswith("inline")

    # The file's name finds the message in a search of the conversation.
    cid = sent["conversation"]["id"]
    found = system.session(STUDENT).get(f"{system.api}/conversations/{cid}/search", params={"q": "diagram"}, timeout=15)
    assert [item["id"] for item in found.json()["items"]] == [sent["message"]["id"]], found.text

    for stranger in (OUTSIDER, CLASSMATE):
        refused = system.session(stranger).get(f"{system.api}/attachments/{picture['id']}", timeout=15)
        assert refused.status_code == 404


def test_a_file_whose_content_is_not_allowed_is_refused_by_its_content_not_its_name(system: System) -> None:
    before = _blobs(system)
    for name, content in (("homework.pdf", ELF), ("notes.txt", SCRIPT)):
        response = upload(system.session(TEACHER), system.api, (name, content, "application/pdf"))
        assert response.status_code == 422, response.text
        assert response.json()["error"] == {
            "code": "unsupported_file_type",
            "message": f"Sorry, you can't send {name}",
            "details": response.json()["error"]["details"],
        }
    assert _blobs(system) == before


def test_a_refused_file_takes_the_whole_upload_with_it(system: System) -> None:
    before = _blobs(system)
    response = upload(
        system.session(TEACHER), system.api, ("fine.png", png(), "image/png"), ("evil.pdf", ELF, "application/pdf")
    )
    assert response.status_code == 422
    assert _blobs(system) == before


def test_an_empty_file_and_a_file_over_20_mb_are_refused_and_leave_nothing(system: System) -> None:
    before = _blobs(system)
    empty = upload(system.session(TEACHER), system.api, ("empty.txt", b"", "text/plain"))
    assert empty.status_code == 422 and "empty" in empty.json()["error"]["message"]
    big = upload(system.session(TEACHER), system.api, ("big.bin", b"\0" * (20 * 1024 * 1024 + 1), "video/mp4"))
    assert big.status_code == 413 and big.json()["error"]["code"] == "file_too_large"
    assert _blobs(system) == before


def test_someone_elses_upload_or_one_already_sent_cannot_be_attached(system: System) -> None:
    [mine] = _uploaded(system, STUDENT, ("mine.png", png(), "image/png"))
    theirs = system.session(TEACHER).post(
        f"{system.api}/conversations",
        json={"recipients": [{"type": "user", "id": STUDENT}], "body": "look", "attachment_ids": [mine["id"]]},
        timeout=15,
    )
    assert theirs.status_code == 404, theirs.text
    cid = _direct(system, STUDENT, TEACHER, "here", [mine["id"]])["conversation"]["id"]
    again = system.session(STUDENT).post(
        f"{system.api}/conversations/{cid}/messages", json={"body": "again", "attachment_ids": [mine["id"]]}, timeout=15
    )
    assert again.status_code == 409, again.text


def test_audio_is_served_in_ranges(system: System) -> None:
    sound = wav(4000)
    [clip] = _uploaded(system, TEACHER, ("clip.wav", sound, "audio/wav"))
    _direct(system, TEACHER, STUDENT, "listen", [clip["id"]])
    http = system.session(STUDENT)
    part = http.get(f"{system.api}/attachments/{clip['id']}", headers={"Range": "bytes=10-19"}, timeout=15)
    assert part.status_code == 206 and part.content == sound[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(sound)}"


def test_a_forward_carries_the_file_and_a_deleted_message_destroys_it(system: System) -> None:
    [picture] = _uploaded(system, TEACHER, ("board.png", png(), "image/png"))
    sent = _direct(system, TEACHER, STUDENT, "the board", [picture["id"]])
    teacher = system.session(TEACHER)
    forwarded = teacher.post(
        f"{system.api}/messages/{sent['message']['id']}/forward",
        json={"recipients": [{"type": "user", "id": CLASSMATE}]},
        timeout=15,
    )
    assert forwarded.status_code == 201, forwarded.text
    assert system.session(CLASSMATE).get(f"{system.api}/attachments/{picture['id']}", timeout=15).status_code == 200

    blobs_before = _blobs(system)
    teacher.delete(f"{system.api}/messages/{sent['message']['id']}", timeout=15)
    # The forward still carries it: the file stays.
    assert system.session(CLASSMATE).get(f"{system.api}/attachments/{picture['id']}", timeout=15).status_code == 200
    assert system.session(STUDENT).get(f"{system.api}/attachments/{picture['id']}", timeout=15).status_code == 404
    forward_id = forwarded.json()["message"]["id"]
    teacher.delete(f"{system.api}/messages/{forward_id}", timeout=15)
    assert wait_for(lambda: len(_blobs(system)) == len(blobs_before) - 1)
    assert system.session(CLASSMATE).get(f"{system.api}/attachments/{picture['id']}", timeout=15).status_code == 404
