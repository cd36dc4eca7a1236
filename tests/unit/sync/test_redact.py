"""Which messages a logged change mentions, and the change with deleted messages' content taken out. No I/O."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from services.sync.changes import change_view
from services.sync.redact import MAX_ID_CHARS, deletion, mentioned_messages, redact, redacted, storable_id
from shared.events import Envelope, make_event, with_personal

GONE, KEPT = "m-gone", "m-kept"


def _message(mid: str, body: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": mid,
        "conversation_id": "c1",
        "seq": 3,
        "sender": {"id": "u1", "name": "Ada"},
        "body": body,
        "links": [{"url": f"https://example.org/{body}"}],
        "attachments": [{"id": "f1", "name": f"{body}.pdf"}],
        "created_at": "2025-01-01T00:00:00.000000Z",
        "edited_at": None,
        "deleted": None,
        "forwarded_from": None,
        "client_id": None,
        **extra,
    }


def _preview(mid: str, text: str) -> dict[str, Any]:
    return {"id": mid, "preview": text, "sender_id": "u1", "sender_name": "Ada", "created_at": "2025-01-01T00:00Z"}


def _created(mid: str, body: str, last: str | None = None) -> Envelope:
    data = {
        "message": _message(mid, body),
        "conversation_id": "c1",
        "conversation": {"id": "c1", "last_seq": 3, "last_message": _preview(last or mid, body)},
    }
    return make_event("conversations.message.created", data, producer="conversations", audience=["u1", "u2"])


def _updated_with_personal_parts() -> Envelope:
    shared = {"id": "c1", "name": "Math", "last_message": _preview(GONE, "secret")}
    views = {
        "u1": shared,
        "u2": shared,
        # A view that differs in its preview: the whole preview goes into u3's personal part.
        "u3": {**shared, "name": "Ada, Bob", "last_message": {**_preview(GONE, "secret"), "sender_name": "Ada L."}},
    }
    data = with_personal("conversation", views, {"conversation_id": "c1", "changes": {"name": "Math"}})
    return make_event("conversations.conversation.updated", data, producer="conversations", audience=list(views))


# Which messages a change mentions --------------------------------------------------------------


def test_a_message_event_mentions_its_message_and_the_preview_message() -> None:
    assert sorted(mentioned_messages(_created(GONE, "hi", last=KEPT).data)) == [GONE, KEPT]
    assert mentioned_messages(_created(GONE, "hi").data) == [GONE]  # each once


def test_a_preview_in_a_personal_part_is_a_mention() -> None:
    data = _updated_with_personal_parts().data
    assert data["personal"][0]["data"]["conversation"]["last_message"]["id"] == GONE
    assert mentioned_messages(data) == [GONE]
    only_personal = {"personal": [{"users": ["u3"], "data": {"conversation": {"last_message": _preview(KEPT, "x")}}}]}
    assert mentioned_messages(only_personal) == [KEPT]


def test_mentions_are_found_at_any_depth_and_in_lists() -> None:
    data = {"a": [{"b": {"message": {"id": "m1"}}}, [{"last_message": {"id": "m2"}}]], "message": {"id": "m3"}}
    assert sorted(mentioned_messages(data)) == ["m1", "m2", "m3"]


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"message": "m1"},
        {"message": {"body": "no id"}},
        {"message": {"id": 7}},
        {"message": {"id": None}},
        {"message": {"id": ""}},
        {"message": [{"id": "m1"}]},  # a list under the key is not an object with an id
        {"message_id": "m1", "attachment_ids": ["f1"]},
        {"msg": {"id": "m1"}, "last": {"id": "m2"}},
        {"message": {"id": "m\u0000"}},
        {"message": {"id": "m\ud800"}},
        {"message": {"id": "m" * (MAX_ID_CHARS + 1)}},
    ],
)
def test_nothing_else_is_a_mention(data: dict[str, Any]) -> None:
    assert mentioned_messages(data) == []


def test_a_very_deep_envelope_is_walked_without_recursion() -> None:
    deep: Any = {"message": {"id": "m-deep"}}
    for _ in range(50_000):
        deep = {"x": [deep]}
    assert mentioned_messages(deep) == ["m-deep"]
    assert redact(deep, {"m-deep"}) is False  # no content keys to clear


def test_storable_ids() -> None:
    assert storable_id("4b6c3e8e-5d0c-4a8e-9a57-3a1f6c7d8e90")
    assert not storable_id("x" * (MAX_ID_CHARS + 1))
    assert not storable_id(b"m1")


# Which message an event deletes ------------------------------------------------------------------


def test_a_deletion_names_its_message() -> None:
    deleted = _message(GONE, "", links=[], attachments=[], deleted={"by": "author", "by_name": "Ada"})
    event = make_event(
        "conversations.message.deleted",
        {"message": deleted, "conversation_id": "c1", "conversation": {"id": "c1", "last_message": None}},
        producer="conversations",
    )
    assert deletion(event) == GONE


@pytest.mark.parametrize(
    "envelope",
    [
        _created(GONE, "hi"),
        Envelope(type="conversations.message.deleted", data={"conversation_id": "c1"}, producer="t"),
        Envelope(type="conversations.message.deleted", data={"message": {"id": 5}}, producer="t"),
        Envelope(type="conversations.message.deleted", data={"message": "m1"}, producer="t"),
    ],
)
def test_anything_else_deletes_nothing(envelope: Envelope) -> None:
    assert deletion(envelope) is None


# Taking the content out ------------------------------------------------------------------------


def test_a_deleted_messages_content_and_preview_are_taken_out_and_nothing_else() -> None:
    envelope = _created(GONE, "secret", last=GONE).to_dict()
    before = copy.deepcopy(envelope)
    assert redact(envelope, {GONE}) is True
    message = envelope["data"]["message"]
    assert (message["body"], message["links"], message["attachments"]) == ("", [], [])
    assert envelope["data"]["conversation"]["last_message"]["preview"] == ""
    # Everything else as it was, in the same order of keys.
    message.update(body=before["data"]["message"]["body"])
    message.update(links=before["data"]["message"]["links"], attachments=before["data"]["message"]["attachments"])
    envelope["data"]["conversation"]["last_message"]["preview"] = "secret"
    assert envelope == before
    assert list(envelope["data"]["message"]) == list(before["data"]["message"])


def test_the_deleted_marker_is_left_to_the_deletion() -> None:
    """A client counts a deleted message out of its unread count only if its copy was not deleted yet."""
    envelope = _created(GONE, "secret").to_dict()
    redact(envelope, {GONE})
    assert envelope["data"]["message"]["deleted"] is None


def test_other_messages_are_untouched() -> None:
    envelope = _created(KEPT, "keep me", last=KEPT).to_dict()
    before = copy.deepcopy(envelope)
    assert redact(envelope, {GONE}) is False
    assert envelope == before


def test_only_the_deleted_preview_goes_when_the_message_is_another() -> None:
    envelope = _created(KEPT, "keep me", last=GONE).to_dict()
    assert redact(envelope, {GONE}) is True
    assert envelope["data"]["message"]["body"] == "keep me"
    assert envelope["data"]["conversation"]["last_message"]["preview"] == ""


def test_previews_in_personal_parts_are_taken_out() -> None:
    envelope = _updated_with_personal_parts().to_dict()
    assert redact(envelope, {GONE}) is True
    assert "secret" not in json.dumps(envelope)
    assert envelope["data"]["personal"][0]["data"]["conversation"]["last_message"]["sender_name"] == "Ada L."
    assert envelope["data"]["personal"][0]["data"]["conversation"]["name"] == "Ada, Bob"


def test_keys_a_mention_lacks_are_not_added() -> None:
    envelope = {"data": {"message": {"id": GONE, "seq": 4}, "last_message": {"id": GONE}}}
    assert redact(envelope, {GONE}) is False
    assert envelope == {"data": {"message": {"id": GONE, "seq": 4}, "last_message": {"id": GONE}}}


def test_a_nested_message_inside_a_deleted_one_is_reached() -> None:
    envelope = {"message": {"id": GONE, "body": "a", "quoted": {"message": {"id": GONE, "body": "b"}}}}
    assert redact(envelope, {GONE}) is True
    assert envelope == {"message": {"id": GONE, "body": "", "quoted": {"message": {"id": GONE, "body": ""}}}}


def test_redacting_again_changes_nothing() -> None:
    text = _updated_with_personal_parts().to_json()
    once = redacted(text, {GONE})
    assert once is not None and "secret" not in once
    assert redacted(once, {GONE}) is None


def test_a_change_without_the_message_stays_byte_for_byte() -> None:
    text = '{ "id": "x",  "data": {"message": {"id": "m-kept", "body": "caf\\u00e9"}} }'
    assert redacted(text, {GONE}) is None


def test_the_text_is_compact_and_keeps_what_postgresql_text_refuses_escaped() -> None:
    event = _created(GONE, "secret")
    event.data["conversation"]["name"] = "nul \u0000, lone \ud800, caf\u00e9"
    text = json.dumps(event.to_dict(), indent=2)
    out = redacted(text, {GONE})
    assert out is not None
    assert "\u0000" not in out and "\\u0000" in out and "\\ud800" in out and out.isascii()
    assert ": " not in out and "\n" not in out
    assert json.loads(out)["data"]["conversation"]["name"] == "nul \u0000, lone \ud800, caf\u00e9"


def test_the_served_change_keeps_its_position_and_shows_no_content() -> None:
    event = _created(GONE, "secret")
    out = redacted(event.to_json(), {GONE})
    assert out is not None
    served = change_view("u2", 42, out)
    assert served["seq"] == 42 and served["event"] == "message.created" and served["event_id"] == event.id
    assert served["message"]["body"] == "" and served["conversation"]["last_message"]["preview"] == ""
    assert served["message"]["seq"] == event.data["message"]["seq"]
