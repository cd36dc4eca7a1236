"""What a change looks like to the one user syncing it, and which page sizes are accepted. No I/O."""

from __future__ import annotations

import dataclasses
import json

import pytest

from services.sync.changes import DEFAULT_LIMIT, MAX_LIMIT, change_view, check_limit
from shared.cursor import Cursors, decode_sync, encode_sync
from shared.errors import AppError
from shared.events import Envelope, make_event, with_personal


@pytest.mark.parametrize(
    ("raw", "limit"), [(None, DEFAULT_LIMIT), ("", DEFAULT_LIMIT), (1, 1), ("25", 25), (1000, 1000)]
)
def test_a_limit_in_range_is_taken_and_none_means_the_default(raw: object, limit: int) -> None:
    assert check_limit(raw) == limit


@pytest.mark.parametrize("raw", [0, -1, MAX_LIMIT + 1, 5000, "abc", "1.5", " ", [3], {}, float("inf"), float("nan")])
def test_a_limit_out_of_range_or_not_a_number_is_validation_failed(raw: object) -> None:
    with pytest.raises(AppError) as refused:
        check_limit(raw)
    assert refused.value.code == "validation_failed"
    assert refused.value.status == 422
    assert refused.value.details == {"field": "limit"}


def _stored(envelope: Envelope) -> str:
    return envelope.to_json()


def test_a_change_is_its_socketio_event_with_its_name_id_time_and_position() -> None:
    event = make_event(
        "conversations.message.created",
        {"message": {"id": "m1", "body": "hi"}, "conversation_id": "c1"},
        producer="conversations",
        audience=["u1"],
    )
    assert change_view("u1", 42, _stored(event)) == {
        "event": "message.created",
        "message": {"id": "m1", "body": "hi"},
        "conversation_id": "c1",
        "event_id": event.id,
        "occurred_at": event.occurred_at,
        "seq": 42,
    }


def test_the_position_is_the_logs_not_one_carried_by_the_envelope() -> None:
    event = dataclasses.replace(
        make_event(
            "conversations.unread.updated",
            {"conversation_id": "c1", "unread_count": 1, "unread_total": 2},
            producer="test",
            audience=["u1"],
        ),
        seq=7,
    )
    assert change_view("u1", 9, _stored(event))["seq"] == 9


def test_each_user_sees_their_own_personal_part_and_no_one_elses() -> None:
    views = {
        "u1": {"id": "c1", "name": "Group", "unread_count": 0},
        "u2": {"id": "c1", "name": "Group", "unread_count": 0},
        "u3": {"id": "c1", "name": "Secret name for u3", "unread_count": 5},
    }
    data = with_personal("conversation", views, {})
    event = make_event("conversations.conversation.created", data, producer="test", audience=list(views))
    for user, view in views.items():
        seen = change_view(user, 1, _stored(event))
        assert seen["conversation"] == view
        assert "personal" not in seen
    assert "Secret name" not in json.dumps(change_view("u1", 1, _stored(event)))


def test_a_type_unknown_to_this_version_keeps_its_type_as_the_event_name() -> None:
    event = Envelope(type="conversations.thing.invented", data={"x": 1}, producer="newer", audience=["u1"])
    assert change_view("u1", 3, _stored(event))["event"] == "conversations.thing.invented"


def test_a_sync_cursor_is_good_for_its_user_only() -> None:
    cursors = Cursors("secret")
    token = encode_sync(cursors, "u1", 12)
    assert decode_sync(cursors, token, "u1") == 12
    assert decode_sync(cursors, None, "u1") is None and decode_sync(cursors, "", "u1") is None
    for user, reader in (("u2", cursors), ("u1", Cursors("another secret"))):
        with pytest.raises(AppError) as refused:
            decode_sync(reader, token, user)
        assert refused.value.code == "invalid_cursor"
