"""Domain events on the bus reach exactly the connected clients of their audience.

"Gets nothing" is checked against a barrier: a later event to the same client, which
arrives after anything published before it (one queue, one socket, in order).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from shared.config import Settings
from shared.cursor import Cursors, decode_sync
from shared.errors import AppError
from shared.events import Envelope, make_event, with_personal
from tests.integration.realtime.support import Listener, publish, wait_for


def _message(audience: list[str] | None, body: str = "hello") -> Envelope:
    data = {"message": {"id": f"m-{body}", "body": body}, "conversation_id": "c1"}
    return make_event("conversations.message.created", data, producer="test", audience=audience)


def _barrier(settings: Settings, listener: Listener, user_id: str) -> str:
    """Publish a marker to this user and wait for it; its event id."""
    marker = _message([user_id], "barrier")
    publish(settings, marker)
    assert wait_for(lambda: listener.got(marker.id)), listener.received
    return marker.id


def _ids(listener: Listener) -> list[str]:
    return [data["event_id"] for _, data in listener.received]


def test_a_message_reaches_its_audience_as_message_created_with_the_payload(
    settings: Settings, connect: Callable[[str], Listener]
) -> None:
    alice = connect("user-a")
    event = dataclasses.replace(_message(["user-a"]), seq=987_654)
    publish(settings, event)
    assert wait_for(lambda: alice.got(event.id))
    [received] = alice.events("message.created")
    assert received == {
        "message": {"id": "m-hello", "body": "hello"},
        "conversation_id": "c1",
        "event_id": event.id,
        "occurred_at": event.occurred_at,
        "cursor": received["cursor"],
    }
    # The cursor is the event's place in the change log, good for this user's /sync only.
    cursors = Cursors(settings.cursor_secret)
    assert decode_sync(cursors, received["cursor"], "user-a") == 987_654
    with pytest.raises(AppError) as refused:
        decode_sync(cursors, received["cursor"], "user-b")
    assert refused.value.code == "invalid_cursor"


def test_each_member_gets_their_own_part_of_an_event_and_no_one_elses(
    settings: Settings, connect: Callable[[str], Listener]
) -> None:
    alice, bob, carol = connect("user-a"), connect("user-b"), connect("user-c")
    views = {
        "user-a": {"name": "Bob and Carol", "can": ["send"]},
        "user-b": {"name": "Alice and Carol", "can": ["send"]},
        "user-c": {"name": "Alice and Bob", "can": ["send", "close"]},
    }
    data = with_personal("conversation", views, {"conversation_id": "c1", "changes": {"status": "open"}})
    event = make_event("conversations.conversation.updated", data, producer="test", audience=sorted(views))
    publish(settings, event)
    for listener, user in ((alice, "user-a"), (bob, "user-b"), (carol, "user-c")):
        assert wait_for(lambda listener=listener: listener.got(event.id))
        [received] = listener.events("conversation.updated")
        assert received["conversation"] == views[user]
        assert "personal" not in received


def test_a_user_outside_the_audience_gets_nothing(settings: Settings, connect: Callable[[str], Listener]) -> None:
    alice, bob = connect("user-a"), connect("user-b")
    event = _message(["user-a"])
    publish(settings, event)
    assert wait_for(lambda: alice.got(event.id))
    marker = _barrier(settings, bob, "user-b")
    assert _ids(bob) == [marker]


def test_every_connection_of_a_user_gets_the_event(settings: Settings, connect: Callable[[str], Listener]) -> None:
    laptop, phone = connect("user-a"), connect("user-a")
    event = _message(["user-a"])
    publish(settings, event)
    assert wait_for(lambda: laptop.got(event.id) and phone.got(event.id))


def test_every_member_of_the_audience_gets_the_event_once(
    settings: Settings, connect: Callable[[str], Listener]
) -> None:
    alice, bob = connect("user-a"), connect("user-b")
    event = _message(["user-a", "user-b", "user-a"])
    publish(settings, event)
    assert wait_for(lambda: alice.got(event.id) and bob.got(event.id))
    marker = _barrier(settings, alice, "user-a")
    assert _ids(alice) == [event.id, marker]


def test_an_event_with_no_audience_reaches_no_one(settings: Settings, connect: Callable[[str], Listener]) -> None:
    alice = connect("user-a")
    publish(settings, _message(None), _message([]))
    marker = _barrier(settings, alice, "user-a")
    assert _ids(alice) == [marker]


def test_an_event_type_clients_never_see_is_not_emitted(settings: Settings, connect: Callable[[str], Listener]) -> None:
    alice = connect("user-a")
    publish(settings, make_event("directory.user.removed", {"user_id": "x"}, producer="test", audience=["user-a"]))
    marker = _barrier(settings, alice, "user-a")
    assert _ids(alice) == [marker]


def test_an_event_that_arrives_twice_is_pushed_once(settings: Settings, connect: Callable[[str], Listener]) -> None:
    alice = connect("user-a")
    event = _message(["user-a"])
    publish(settings, event, event)
    marker = _barrier(settings, alice, "user-a")
    assert _ids(alice) == [event.id, marker]
