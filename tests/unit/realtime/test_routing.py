"""How an event envelope becomes a Socket.IO emit: event name, payload, rooms."""

from __future__ import annotations

from realtime.routing import client_bindings, client_event, client_payload, delivery_for, rooms, user_room
from shared.events import CATALOGUE, Envelope, make_event


def _message_created(audience: list[str] | None = None, **extra: object) -> Envelope:
    data = {"message": {"id": "m1", "body": "hi"}, "conversation_id": "c1", **extra}
    return make_event("conversations.message.created", data, producer="test", audience=audience)


def test_a_catalogued_client_event_gets_its_socketio_name() -> None:
    assert client_event(_message_created(["u1"])) == "message.created"


def test_an_event_clients_never_see_has_no_socketio_name() -> None:
    envelope = make_event("directory.user.removed", {"user_id": "u1"}, producer="test", audience=["u1"])
    assert client_event(envelope) is None


def test_an_event_type_missing_from_the_catalogue_is_not_for_clients() -> None:
    envelope = Envelope(type="conversations.thing.invented", data={}, producer="newer", audience=["u1"])
    assert client_event(envelope) is None
    assert delivery_for(envelope) is None


def test_the_payload_is_the_data_plus_event_id_time_and_cursor() -> None:
    envelope = _message_created(["u1"], cursor="k42")
    assert client_payload(envelope) == {
        "message": {"id": "m1", "body": "hi"},
        "conversation_id": "c1",
        "event_id": envelope.id,
        "occurred_at": envelope.occurred_at,
        "cursor": "k42",
    }


def test_the_payload_carries_a_null_cursor_when_the_producer_gave_none() -> None:
    payload = client_payload(_message_created(["u1"]))
    assert "cursor" in payload and payload["cursor"] is None


def test_the_envelope_id_wins_over_an_event_id_inside_the_data() -> None:
    envelope = _message_created(["u1"], event_id="forged")
    assert client_payload(envelope)["event_id"] == envelope.id


def test_each_audience_member_gets_their_own_room_once() -> None:
    assert rooms(_message_created(["u1", "u2", "u1"])) == [user_room("u1"), "user:u2"]


def test_no_audience_means_no_rooms() -> None:
    assert rooms(_message_created(None)) == []
    assert rooms(_message_created([])) == []


def test_an_event_without_audience_is_delivered_to_no_one() -> None:
    assert delivery_for(_message_created(None)) is None
    assert delivery_for(_message_created([])) is None


def test_a_delivery_bundles_name_payload_and_rooms() -> None:
    envelope = _message_created(["u1", "u2"])
    delivery = delivery_for(envelope)
    assert delivery is not None
    assert delivery.event == "message.created"
    assert delivery.rooms == ["user:u1", "user:u2"]
    assert delivery.payload == client_payload(envelope)


def test_the_queue_is_bound_to_exactly_the_types_clients_see() -> None:
    expected = {name for name, spec in CATALOGUE.items() if spec.client_event is not None}
    assert set(client_bindings()) == expected
    assert "conversations.message.created" in client_bindings()
    assert "directory.user.removed" not in client_bindings()
