"""Claiming uploads for a message (all or none, one's own, unused), and giving them back."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.errors import AppError
from tests.integration.attachments.conftest import OTHER, OWNER, Api


def _claim(api: Api, user: str, ids: Any, message_id: uuid.UUID | None = None) -> list[dict[str, Any]]:
    return api.call(user, "attachments.claim", ids=ids, message_id=str(message_id or uuid.uuid4()))["attachments"]


def _refused(api: Api, user: str, ids: Any, code: str, message_id: uuid.UUID | None = None) -> AppError:
    with pytest.raises(AppError) as refused:
        _claim(api, user, ids, message_id)
    assert refused.value.code == code
    return refused.value


def test_a_claim_takes_the_files_for_one_message_in_the_order_asked(api: Api) -> None:
    first, second = api.upload(OWNER, name="one.png"), api.upload(OWNER, name="two.png")
    message = uuid.uuid4()
    assert _claim(api, OWNER, [second["id"], first["id"], second["id"]], message) == [second, first]
    for item in (first, second):
        row = api.row(item["id"])
        assert (row.state, row.message_id) == ("claimed", message)


def test_a_claim_is_all_or_none(api: Api) -> None:
    mine = api.upload(OWNER)
    _refused(api, OWNER, [mine["id"], str(uuid.uuid4())], "not_found")
    assert api.row(mine["id"]).state == "uploaded"
    theirs = api.upload(OTHER)
    _refused(api, OWNER, [mine["id"], theirs["id"]], "not_found")
    assert api.row(mine["id"]).state == "uploaded" and api.row(theirs["id"]).state == "uploaded"
    used = api.upload(OWNER)
    _claim(api, OWNER, [used["id"]])
    _refused(api, OWNER, [mine["id"], used["id"]], "not_allowed")
    assert api.row(mine["id"]).state == "uploaded"


def test_someone_elses_upload_cannot_be_claimed(api: Api) -> None:
    theirs = api.upload(OTHER)
    refused = _refused(api, OWNER, [theirs["id"]], "not_found")
    assert refused.details == {"field": "attachment_ids"}
    assert api.row(theirs["id"]).state == "uploaded"


def test_a_file_already_claimed_or_sent_cannot_be_claimed_for_another_message(api: Api) -> None:
    item = api.upload(OWNER, name="once.png")
    message = uuid.uuid4()
    _claim(api, OWNER, [item["id"]], message)
    refused = _refused(api, OWNER, [item["id"]], "not_allowed")
    assert "once.png" in refused.message
    # The same message asking again (a retried send) gets its files.
    assert _claim(api, OWNER, [item["id"]], message) == [item]
    assert api.row(item["id"]).message_id == message


def test_a_file_gone_cannot_be_claimed(api: Api) -> None:
    item = api.upload(OWNER)
    api.call(OWNER, "attachments.discard", ids=[item["id"]])
    _refused(api, OWNER, [item["id"]], "not_found")


@pytest.mark.parametrize(
    "ids",
    [
        None,
        [],
        "00000000-0000-0000-0000-000000000000",
        ["not-a-uuid"],
        [""],
        [str(uuid.uuid4()) for _ in range(11)],
        [42],
        [None],
    ],
    ids=["none", "empty", "not-a-list", "not-a-uuid", "blank", "eleven", "number", "null"],
)
def test_malformed_ids_are_a_validation_error(api: Api, ids: Any) -> None:
    _refused(api, OWNER, ids, "validation_failed")


def test_a_malformed_id_among_good_ones_claims_nothing(api: Api) -> None:
    mine = api.upload(OWNER)
    _refused(api, OWNER, [mine["id"], 42], "validation_failed")
    _refused(api, OWNER, [mine["id"], "nope"], "validation_failed")
    assert api.row(mine["id"]).state == "uploaded"


def test_a_release_gives_the_files_of_a_failed_send_back(api: Api) -> None:
    first, second = api.upload(OWNER), api.upload(OWNER)
    failed, other = uuid.uuid4(), uuid.uuid4()
    _claim(api, OWNER, [first["id"]], failed)
    _claim(api, OWNER, [second["id"]], other)
    api.call(OWNER, "attachments.release", message_id=str(failed))
    released = api.row(first["id"])
    assert (released.state, released.message_id) == ("uploaded", None)
    assert api.row(second["id"]).state == "claimed"  # another message's files stay taken
    # Released files can go with the next send.
    assert _claim(api, OWNER, [first["id"]]) == [first]


def test_only_the_owner_releases_and_a_sent_file_stays_sent(api: Api) -> None:
    item, sent = api.upload(OWNER), api.upload(OWNER)
    message, sent_message = uuid.uuid4(), uuid.uuid4()
    _claim(api, OWNER, [item["id"]], message)
    api.call(OTHER, "attachments.release", message_id=str(message))
    assert api.row(item["id"]).state == "claimed"
    _claim(api, OWNER, [sent["id"]], sent_message)
    api.stored(sent_message, sent["id"])
    api.call(OWNER, "attachments.release", message_id=str(sent_message))
    assert api.row(sent["id"]).state == "attached"
    # Releasing a message that claimed nothing changes nothing.
    api.call(OWNER, "attachments.release", message_id=str(uuid.uuid4()))
    assert {r.state for r in api.rows().values()} == {"claimed", "attached"}
