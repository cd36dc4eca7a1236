"""The service follows messages through the bus: a file lives while a message carries it."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from services.attachments.handlers import Purger, consumers
from shared.bus import EventConsumer
from shared.config import Settings
from shared.events import Envelope, make_event
from tests.integration.attachments.conftest import OWNER, Api
from tests.support.bus import consuming, publish
from tests.support.waiting import wait_for


@pytest.fixture
def following(db: Settings, api: Api) -> Iterator[list[EventConsumer]]:
    with consuming(db, consumers(db)) as started:
        yield started


def _created(message_id: uuid.UUID, *files: dict[str, Any]) -> Envelope:
    data = {
        "message_id": str(message_id),
        "conversation_id": str(uuid.uuid4()),
        "attachment_ids": [f["id"] for f in files],
    }
    return make_event("conversations.files.attached", data, producer="conversations")


def _deleted(message_id: uuid.UUID, *files: dict[str, Any]) -> Envelope:
    data = {"message_id": str(message_id), "attachment_ids": [f["id"] for f in files]}
    return make_event("conversations.files.released", data, producer="conversations")


def _sent(api: Api, *files: dict[str, Any]) -> uuid.UUID:
    """Claim the files for a new message, as a send does before storing it; the message id."""
    message = uuid.uuid4()
    api.call(OWNER, "attachments.claim", ids=[f["id"] for f in files], message_id=str(message))
    return message


def _state(api: Api, attachment_id: str) -> str | None:
    row = api.row(attachment_id)
    return None if row is None else row.state


def test_a_stored_message_makes_its_files_attached(db: Settings, api: Api, following: Any) -> None:
    first, second = api.upload(OWNER), api.upload(OWNER)
    message = _sent(api, first, second)
    created = _created(message, first, second)
    publish(db, created, created)  # delivered twice: handled once
    assert wait_for(lambda: {_state(api, first["id"]), _state(api, second["id"])} == {"attached"})
    assert api.refs() == {(first["id"], str(message)), (second["id"], str(message))}
    # Attached files outlive the purge of unsent uploads.
    assert Purger(dataclasses.replace(db, unclaimed_upload_hours=0)).purge_once() == 0
    assert len(api.blobs.keys()) == 2


def test_a_message_without_files_changes_nothing(db: Settings, api: Api, following: Any) -> None:
    unsent, marker = api.upload(OWNER), api.upload(OWNER)
    publish(db, _created(uuid.uuid4()), _deleted(uuid.uuid4()), _created(_sent(api, marker), marker))
    # Events are handled in order: once the last one is, so were the others.
    assert wait_for(lambda: _state(api, marker["id"]) == "attached")
    assert _state(api, unsent["id"]) == "uploaded"
    assert len(api.blobs.keys()) == 2


def test_deleting_the_only_message_carrying_a_file_destroys_it(db: Settings, api: Api, following: Any) -> None:
    item, kept = api.upload(OWNER), api.upload(OWNER)
    message, other = _sent(api, item), _sent(api, kept)
    created = _created(message, item)
    publish(db, created, _created(other, kept))
    assert wait_for(lambda: _state(api, item["id"]) == _state(api, kept["id"]) == "attached")
    key, kept_key = api.key(item["id"]), api.key(kept["id"])

    deleted = _deleted(message)
    publish(db, deleted, deleted)  # delivered twice: handled once
    assert wait_for(lambda: api.row(item["id"]) is None)
    assert wait_for(lambda: api.blobs.keys() == [kept_key]), api.blobs.keys()
    assert key not in api.blobs.keys()
    assert api.refs() == {(kept["id"], str(other))}

    # A late repeat of the creation, already handled once, brings nothing back.
    marker = api.upload(OWNER)
    publish(db, created, _created(_sent(api, marker), marker))
    assert wait_for(lambda: _state(api, marker["id"]) == "attached")
    assert api.row(item["id"]) is None
    assert (item["id"], str(message)) not in api.refs()


def test_a_file_carried_by_two_messages_lives_until_both_are_deleted(db: Settings, api: Api, following: Any) -> None:
    item = api.upload(OWNER)
    original = _sent(api, item)
    forward = uuid.uuid4()  # a forward carries the same file without claiming it
    publish(db, _created(original, item), _created(forward, item))
    assert wait_for(lambda: api.refs() == {(item["id"], str(original)), (item["id"], str(forward))})
    key = api.key(item["id"])

    publish(db, _deleted(original))
    assert wait_for(lambda: api.refs() == {(item["id"], str(forward))})
    assert _state(api, item["id"]) == "attached" and api.blobs.keys() == [key]
    assert Purger(dataclasses.replace(db, unclaimed_upload_hours=0)).purge_once() == 0

    publish(db, _deleted(forward))
    assert wait_for(lambda: api.row(item["id"]) is None)
    assert wait_for(lambda: api.blobs.keys() == [])
    assert api.refs() == set()
