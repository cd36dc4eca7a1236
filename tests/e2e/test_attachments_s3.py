"""Files end to end with BLOB_STORE=s3: the whole system keeping its blobs in a real S3 server (moto, over HTTP).

The gateway and the attachments service each talk to the bucket themselves; the test looks at
the bucket behind their backs with a client of its own.
"""

from __future__ import annotations

import socket
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import text

from shared.blobs import PART_SIZE
from shared.config import Settings
from shared.db import transaction
from tests.e2e.conftest import System, running_system
from tests.e2e.test_attachments_bad_input import BOUNDARY, ELF, error, multipart, part, png, post_raw, wav
from tests.support.s3 import aws_test_env, moto_server, s3_client, s3_leftovers
from tests.support.waiting import wait_for

TEACHER, STUDENT = "user-t-001", "user-s-0001"
MiB = 1024 * 1024


@dataclass
class S3System:
    system: System
    s3: Any
    bucket: str

    @property
    def api(self) -> str:
        return self.system.api

    def leftovers(self) -> list[str]:
        """Every object in the bucket and every unfinished multipart upload."""
        return s3_leftovers(self.s3, self.bucket)

    def object(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def row(self, attachment_id: str) -> Any:
        with transaction(self.system.settings.database_url("attachments")) as session:
            return session.execute(
                text("SELECT blob_key, name, size, state FROM attachments WHERE id = :id"), {"id": attachment_id}
            ).first()


@pytest.fixture(scope="module")
def s3_system(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3System]:
    bucket = f"e2e-{uuid.uuid4().hex[:12]}"
    local = tmp_path_factory.mktemp("unused-blob-dir")
    # The processes inherit os.environ: the credentials reach them, and are undone afterwards.
    with pytest.MonkeyPatch.context() as env, moto_server() as endpoint:
        aws_test_env(env, tmp_path_factory.mktemp("aws"))
        with running_system(
            base_settings,
            tmp_path_factory.mktemp("logs"),
            blob_store="s3",
            s3_endpoint_url=endpoint,
            s3_bucket=bucket,
            blob_dir=local,
        ) as running:
            yield S3System(running, s3_client(endpoint), bucket)
    assert not any(Path(local).iterdir()), "nothing is stored locally when the store is S3"


def upload(s3: S3System, user: str, *files: tuple[str, bytes]) -> requests.Response:
    return post_raw(s3.system.session(user), s3.api, multipart(*(part(data, filename=n.encode()) for n, data in files)))


def uploaded(s3: S3System, user: str, *files: tuple[str, bytes]) -> list[dict[str, Any]]:
    response = upload(s3, user, *files)
    assert response.status_code == 201, response.text
    return response.json()["items"]


def send(s3: S3System, sender: str, to: str, ids: list[str]) -> dict[str, Any]:
    response = s3.system.session(sender).post(
        f"{s3.api}/conversations",
        json={"recipients": [{"type": "user", "id": to}], "body": "attached", "attachment_ids": ids},
        timeout=15,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_a_file_goes_up_to_the_bucket_and_comes_back_whole_and_in_ranges(s3_system: S3System) -> None:
    sound = wav(40_000)
    [clip] = uploaded(s3_system, TEACHER, ("clip.wav", sound))
    assert clip["content_type"].startswith("audio/") and clip["size"] == len(sound)
    key = s3_system.row(clip["id"]).blob_key
    assert s3_system.object(key) == sound

    sent = send(s3_system, TEACHER, STUDENT, [clip["id"]])
    assert sent["message"]["attachments"] == [clip]
    student = s3_system.system.session(STUDENT)
    whole = student.get(f"{s3_system.api}/attachments/{clip['id']}", timeout=15)
    assert whole.status_code == 200 and whole.content == sound
    assert whole.headers["Content-Length"] == str(len(sound))
    part_of_it = student.get(
        f"{s3_system.api}/attachments/{clip['id']}", headers={"Range": "bytes=100-1123"}, timeout=15
    )
    assert part_of_it.status_code == 206 and part_of_it.content == sound[100:1124]
    assert part_of_it.headers["Content-Range"] == f"bytes 100-1123/{len(sound)}"
    tail = student.get(f"{s3_system.api}/attachments/{clip['id']}", headers={"Range": "bytes=-10"}, timeout=15)
    assert tail.status_code == 206 and tail.content == sound[-10:]
    beyond = student.get(f"{s3_system.api}/attachments/{clip['id']}", headers={"Range": "bytes=999999-"}, timeout=15)
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(sound)}"
    # Someone outside the conversation gets nothing.
    error(
        s3_system.system.session("user-s-0013").get(f"{s3_system.api}/attachments/{clip['id']}", timeout=15),
        404,
        "not_found",
    )


def test_a_file_larger_than_one_part_goes_up_in_parts(s3_system: S3System) -> None:
    sound = wav(PART_SIZE + 3 * MiB)
    [clip] = uploaded(s3_system, TEACHER, ("long.wav", sound))
    key = s3_system.row(clip["id"]).blob_key
    head = s3_system.s3.head_object(Bucket=s3_system.bucket, Key=key)
    assert head["ContentLength"] == len(sound) and head["ETag"].endswith('-2"')  # two parts
    assert not [u for u in s3_system.leftovers() if u.startswith("upload:")]
    send(s3_system, TEACHER, STUDENT, [clip["id"]])
    got = s3_system.system.session(STUDENT).get(
        f"{s3_system.api}/attachments/{clip['id']}",
        headers={"Range": f"bytes={PART_SIZE - 5}-{PART_SIZE + 4}"},
        timeout=30,
    )
    assert got.status_code == 206 and got.content == sound[PART_SIZE - 5 : PART_SIZE + 5]


def test_a_refused_type_leaves_no_object_in_the_bucket(s3_system: S3System) -> None:
    before = s3_system.leftovers()
    refused = error(upload(s3_system, TEACHER, ("photo.png", ELF)), 422, "unsupported_file_type")
    assert refused["message"] == "Sorry, you can't send photo.png"
    assert s3_system.leftovers() == before
    # One refused file takes the others of its upload with it.
    error(upload(s3_system, TEACHER, ("fine.png", png()), ("bad.png", ELF)), 422, "unsupported_file_type")
    assert s3_system.leftovers() == before
    error(upload(s3_system, TEACHER, ("empty.png", b"")), 422, "validation_failed")
    assert s3_system.leftovers() == before


def test_a_file_over_20_mb_leaves_no_object_and_no_unfinished_upload(s3_system: S3System) -> None:
    before = s3_system.leftovers()
    error(upload(s3_system, TEACHER, ("huge.wav", wav(20 * MiB))), 413, "file_too_large")
    assert s3_system.leftovers() == before


def test_an_upload_cut_off_mid_part_leaves_no_unfinished_upload(s3_system: S3System) -> None:
    before = s3_system.leftovers()
    body = multipart(part(wav(2 * PART_SIZE), filename=b"cut.wav"))
    head = (
        "POST /api/v1/attachments HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{s3_system.system.settings.gateway_port}\r\n"
        f"Authorization: Bearer {s3_system.system.token(TEACHER)}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", s3_system.system.settings.gateway_port), timeout=10) as sock:
        sock.sendall(head + body[: PART_SIZE + MiB])
        # The first part is up: the multipart upload exists in the bucket.
        assert wait_for(lambda: any(u.startswith("upload:") for u in s3_system.leftovers()), timeout=20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert wait_for(lambda: s3_system.leftovers() == before, timeout=20), s3_system.leftovers()
    assert [item["name"] for item in uploaded(s3_system, TEACHER, ("after.png", png()))] == ["after.png"]


def test_deleting_the_message_deletes_the_object(s3_system: S3System) -> None:
    [picture] = uploaded(s3_system, TEACHER, ("board.png", png()))
    key = s3_system.row(picture["id"]).blob_key
    sent = send(s3_system, TEACHER, STUDENT, [picture["id"]])
    assert wait_for(lambda: s3_system.row(picture["id"]).state == "attached")
    assert key in s3_system.leftovers()

    deleted = s3_system.system.session(TEACHER).delete(f"{s3_system.api}/messages/{sent['message']['id']}", timeout=15)
    assert deleted.status_code == 200, deleted.text
    assert wait_for(lambda: key not in s3_system.leftovers())
    assert s3_system.row(picture["id"]) is None
    student = s3_system.system.session(STUDENT)
    error(student.get(f"{s3_system.api}/attachments/{picture['id']}", timeout=15), 404, "not_found")
