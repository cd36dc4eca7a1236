"""Registering an upload (judged by its content, kept or removed), discarding it, opening it."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import pytest

from services.attachments.handlers import methods
from shared.config import Settings
from shared.errors import AppError
from tests.integration.attachments.conftest import ELF, OTHER, OWNER, PDF, Api, png


def test_a_file_is_judged_by_its_content_and_kept(api: Api) -> None:
    key = api.put(png())
    item = api.call(OWNER, "attachments.register", key=key, name="../homework/notes.txt", size=999)
    # The type comes from the bytes, the size from the store (not from what the caller says).
    assert item == {"id": item["id"], "name": "notes.txt", "size": len(png()), "content_type": "image/png"}
    row = api.row(item["id"])
    assert (row.owner_id, row.blob_key, row.state, row.message_id) == (OWNER, key, "uploaded", None)
    assert api.blobs.keys() == [key]


@pytest.mark.parametrize(
    "content",
    [ELF, b"MZ" + bytes(100), b"#!/bin/sh\nrm -rf ~\n", b"<html><script>alert(1)</script></html>"],
    ids=["elf", "pe", "script", "html"],
)
def test_a_refused_type_is_refused_and_its_blob_removed(api: Api, content: bytes) -> None:
    key = api.put(content)
    with pytest.raises(AppError) as refused:
        api.call(OWNER, "attachments.register", key=key, name="photo.png")
    assert refused.value.code == "unsupported_file_type"
    assert refused.value.message == "Sorry, you can't send photo.png"
    assert api.blobs.keys() == [] and api.rows() == {}


def test_an_empty_file_is_refused_and_its_blob_removed(api: Api) -> None:
    key = api.put(b"")
    with pytest.raises(AppError) as refused:
        api.call(OWNER, "attachments.register", key=key, name="empty.txt")
    assert refused.value.code == "validation_failed" and "empty" in refused.value.message
    assert api.blobs.keys() == [] and api.rows() == {}


@pytest.mark.parametrize("name", ["..", "/", "../..", "C:\\", "\x00\x01", "", None, 42])
def test_a_file_without_a_usable_name_is_refused_and_its_blob_removed(api: Api, name: object) -> None:
    key = api.put(png())
    with pytest.raises(AppError) as refused:
        api.call(OWNER, "attachments.register", key=key, name=name)
    assert refused.value.code == "validation_failed"
    assert api.blobs.keys() == [] and api.rows() == {}


@pytest.mark.parametrize("key", [uuid.uuid4().hex, "../../etc/passwd", "", None, 42, "A" * 32])
def test_an_upload_that_is_not_in_the_store_is_missing(api: Api, tmp_path: Path, key: object) -> None:
    bystander = api.put(png())
    with pytest.raises(AppError) as refused:
        api.call(OWNER, "attachments.register", key=key, name="x.png")
    assert refused.value.code == "validation_failed" and refused.value.details == {"field": "file"}
    assert api.blobs.keys() == [bystander] and api.rows() == {}


def test_registering_a_key_twice_leaves_the_first_registration_whole(api: Api) -> None:
    key = api.put(png())
    first = api.call(OWNER, "attachments.register", key=key, name="first.png")
    with pytest.raises(AppError) as refused:
        api.call(OTHER, "attachments.register", key=key, name="second.png")
    assert refused.value.code == "validation_failed"
    # The first file still has its row and its bytes: no row is ever left without a blob.
    assert list(api.rows()) == [first["id"]]
    assert api.blobs.keys() == [key] and api.blobs.head(key, 100) == png()


def test_without_a_caller_nothing_is_registered(api: Api) -> None:
    key = api.put(png())
    with pytest.raises(AppError) as refused:
        api.call(None, "attachments.register", key=key, name="x.png")
    assert refused.value.code == "unauthenticated"
    assert api.rows() == {}


def test_the_allowed_types_come_from_the_settings(db: Settings) -> None:
    images_only = dataclasses.replace(db, attachment_types=("image/*",))
    api = Api(images_only, methods(images_only))
    assert api.upload(OWNER, png())["content_type"] == "image/png"
    with pytest.raises(AppError) as refused:
        api.upload(OWNER, PDF, "report.pdf")
    assert refused.value.code == "unsupported_file_type"
    assert len(api.rows()) == 1 and len(api.blobs.keys()) == 1


def test_discarding_removes_only_ones_own_unsent_uploads(api: Api) -> None:
    mine, claimed, theirs = api.upload(OWNER), api.upload(OWNER), api.upload(OTHER)
    api.call(OWNER, "attachments.claim", ids=[claimed["id"]], message_id=str(uuid.uuid4()))
    kept = {api.key(claimed["id"]), api.key(theirs["id"])}
    api.call(OWNER, "attachments.discard", ids=[mine["id"], claimed["id"], theirs["id"], str(uuid.uuid4())])
    assert set(api.rows()) == {claimed["id"], theirs["id"]}
    assert set(api.blobs.keys()) == kept


@pytest.mark.parametrize("ids", [[], None, "x", ["not-a-uuid"], [str(uuid.uuid4()) for _ in range(101)]])
def test_discarding_needs_a_list_of_ids(api: Api, ids: object) -> None:
    mine = api.upload(OWNER)
    with pytest.raises(AppError) as refused:
        api.call(OWNER, "attachments.discard", ids=ids)
    assert refused.value.code == "validation_failed"
    assert list(api.rows()) == [mine["id"]]


def test_ones_own_unsent_upload_opens_with_its_key(api: Api) -> None:
    item = api.upload(OWNER, name="diagram.png")
    opened = api.call(OWNER, "attachments.open", id=item["id"])
    assert opened == {**item, "key": api.key(item["id"]), "inline": True}
    text_file = api.upload(OWNER, b"Plain words.\n", "notes.txt")
    assert api.call(OWNER, "attachments.open", id=text_file["id"])["inline"] is True
    pdf = api.upload(OWNER, PDF, "report.pdf")
    assert api.call(OWNER, "attachments.open", id=pdf["id"])["content_type"] == "application/pdf"


@pytest.mark.parametrize("attachment_id", [str(uuid.uuid4()), "not-a-uuid", "", None, "../../etc/passwd"])
def test_opening_an_unknown_or_malformed_id_is_not_found(api: Api, attachment_id: object) -> None:
    api.upload(OWNER)
    with pytest.raises(AppError) as refused:
        api.call(OWNER, "attachments.open", id=attachment_id)
    assert refused.value.code == "not_found"
