"""The purge: uploads nobody sent in time go, with their blobs; files that messages carry stay."""

from __future__ import annotations

import dataclasses
import uuid

from services.attachments.handlers import Purger
from tests.integration.attachments.conftest import OTHER, OWNER, Api


def _attach(api: Api, attachment_id: str) -> None:
    """Send the file: claimed for a message, then the message exists (what the message event does)."""
    message = uuid.uuid4()
    api.call(api.row(attachment_id).owner_id, "attachments.claim", ids=[attachment_id], message_id=str(message))
    api.stored(message, attachment_id)


def test_unsent_uploads_past_their_time_are_purged_with_their_blobs(api: Api) -> None:
    for user in (OWNER, OTHER):  # never sent: one of mine, one of someone else's
        api.upload(user)
    claimed, sent = api.upload(OWNER), api.upload(OWNER)
    # A send that claimed files and never finished leaves them claimed: they go too.
    api.call(OWNER, "attachments.claim", ids=[claimed["id"]], message_id=str(uuid.uuid4()))
    _attach(api, sent["id"])
    kept_key = api.key(sent["id"])

    purged = Purger(dataclasses.replace(api.settings, unclaimed_upload_hours=0)).purge_once()

    assert purged == 3
    assert list(api.rows()) == [sent["id"]]
    assert api.blobs.keys() == [kept_key]
    # Once more: nothing left to purge.
    assert Purger(dataclasses.replace(api.settings, unclaimed_upload_hours=0)).purge_once() == 0


def test_uploads_within_their_time_are_kept(api: Api) -> None:
    items = [api.upload(OWNER), api.upload(OTHER)]
    assert Purger(api.settings).purge_once() == 0  # 24 hours by default
    assert set(api.rows()) == {i["id"] for i in items}
    assert len(api.blobs.keys()) == 2


def test_an_upload_whose_blob_is_already_gone_is_purged_all_the_same(api: Api) -> None:
    item = api.upload(OWNER)
    api.blobs.delete(api.key(item["id"]))
    assert Purger(dataclasses.replace(api.settings, unclaimed_upload_hours=0)).purge_once() == 1
    assert api.rows() == {}
