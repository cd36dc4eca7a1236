"""How a logged change becomes Socket.IO emits: event name, each member's payload and cursor."""

from __future__ import annotations

import dataclasses

from realtime.routing import client_bindings, deliveries
from shared.events import CATALOGUE, LOGGED_PREFIX, Envelope, client_event, make_event, with_personal


def _message_created(audience: list[str] | None = None, seq: int | None = 7, **extra: object) -> Envelope:
    data = {"message": {"id": "m1", "body": "hi"}, "conversation_id": "c1", **extra}
    envelope = make_event("conversations.message.created", data, producer="test", audience=audience)
    return dataclasses.replace(envelope, seq=seq)


def _everyone(user_id: str) -> bool:
    return True


def _cursor(user_id: str, seq: int) -> str:
    return f"{user_id}@{seq}"


def _deliver(envelope: Envelope, here=_everyone) -> list:  # type: ignore[no-untyped-def]
    return list(deliveries(envelope, here, _cursor))


def test_a_catalogued_client_event_gets_its_socketio_name() -> None:
    assert client_event(_message_created(["u1"]).type) == "message.created"


def test_an_event_clients_never_see_has_no_socketio_name_and_goes_to_no_one() -> None:
    envelope = make_event("directory.user.removed", {"user_id": "u1"}, producer="test", audience=["u1"])
    assert client_event(envelope.type) is None
    assert _deliver(dataclasses.replace(envelope, seq=3)) == []


def test_an_event_type_missing_from_the_catalogue_is_not_for_clients() -> None:
    envelope = Envelope(type="conversations.thing.invented", data={}, producer="newer", audience=["u1"], seq=1)
    assert client_event(envelope.type) is None
    assert _deliver(envelope) == []


def test_the_payload_is_the_data_plus_event_id_time_and_the_members_own_cursor() -> None:
    envelope = _message_created(["u1", "u2"])
    [first, second] = _deliver(envelope)
    assert (first.event, first.user_id) == ("message.created", "u1")
    assert first.payload == {
        "message": {"id": "m1", "body": "hi"},
        "conversation_id": "c1",
        "event_id": envelope.id,
        "occurred_at": envelope.occurred_at,
        "cursor": "u1@7",
    }
    assert second.payload["cursor"] == "u2@7"


def test_an_event_not_yet_in_the_change_log_is_not_pushed() -> None:
    # Without a position it could not carry a cursor the client may sync from.
    assert _deliver(_message_created(["u1"], seq=None)) == []


def test_the_envelope_id_wins_over_an_event_id_inside_the_data() -> None:
    [delivery] = _deliver(_message_created(["u1"], event_id="forged"))
    assert delivery.payload["event_id"] != "forged"


def test_each_audience_member_gets_one_delivery() -> None:
    assert [d.user_id for d in _deliver(_message_created(["u1", "u2", "u1"]))] == ["u1", "u2"]


def test_no_audience_means_no_one() -> None:
    assert _deliver(_message_created(None)) == []
    assert _deliver(_message_created([])) == []


def test_members_connected_elsewhere_cost_nothing_here() -> None:
    assert [d.user_id for d in _deliver(_message_created(["u1", "u2", "u3"]), lambda u: u == "u2")] == ["u2"]


def test_each_member_receives_their_own_part_and_nobody_elses() -> None:
    views = {
        "u1": {"name": "Bo", "can": ["send"]},
        "u2": {"name": "Al", "can": ["send"]},
        "u3": {"name": "Al", "can": []},
    }
    data = with_personal("conversation", views, {"conversation_id": "c1", "changes": {}})
    envelope = dataclasses.replace(
        make_event("conversations.conversation.updated", data, producer="test", audience=["u1", "u2", "u3"]), seq=9
    )
    payloads = {d.user_id: d.payload for d in _deliver(envelope)}
    assert {u: p["conversation"] for u, p in payloads.items()} == views
    assert all("personal" not in p for p in payloads.values())


def test_the_queue_is_bound_to_exactly_the_logged_types_clients_see() -> None:
    expected = {LOGGED_PREFIX + name for name, spec in CATALOGUE.items() if spec.client_event is not None}
    assert set(client_bindings()) == expected
    assert "logged.conversations.message.created" in client_bindings()
