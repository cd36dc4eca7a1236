"""Which messages the change logger takes in, and the queue it reads. No I/O."""

from __future__ import annotations

import json

import pytest

from services.sync.log import log_queue, parse
from shared.config import Settings
from shared.events import CATALOGUE, Envelope, client_types, make_event

ID = "4b6c3e8e-5d0c-4a8e-9a57-3a1f6c7d8e90"


def _body(**fields: object) -> str:
    return json.dumps({"id": ID, "type": "conversations.message.created", "data": {}, **fields})


def test_a_client_event_is_taken_in_as_it_was_published() -> None:
    event = make_event(
        "conversations.message.created",
        {"message": {"id": "m1", "body": "\u0000 and \U0001f600"}, "conversation_id": "c1"},
        producer="conversations",
        audience=["u1", "u2"],
    )
    assert parse(event.to_json()) == event
    assert parse(event.to_json().encode()) == event
    assert parse(_body(audience=None)).audience is None


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe\x00",
        "",
        '"a string"',
        "[1, 2]",
        "42",
        "null",
        "[" * 100_000,
        '{"type": "conversations.message.created"}',
        _body(id="not-a-uuid"),
        _body(data=[]),
        _body(audience="u1"),
        _body(version=1e400),
        _body(version="one"),
        _body(seq=0),
    ],
)
def test_anything_not_an_envelope_is_refused_as_malformed(body: bytes | str) -> None:
    with pytest.raises(ValueError):
        parse(body)


@pytest.mark.parametrize(
    "envelope",
    [
        Envelope(type="directory.user.removed", data={"user_id": "u1"}, producer="t", audience=["u1"]),
        Envelope(type="conversations.message.created\u0000", data={}, producer="t", audience=["u1"]),
        Envelope(type="conversations." + "x" * 300, data={}, producer="t", audience=["u1"]),
        Envelope(type="conversations.message.created", data={}, producer="t", audience=["u\u00001"]),
        Envelope(type="conversations.message.created", data={}, producer="t", audience=["u1", "\ud800"]),
    ],
)
def test_an_envelope_the_log_could_never_store_or_republish_is_refused(envelope: Envelope) -> None:
    with pytest.raises(ValueError):
        parse(envelope.to_json())


def test_the_log_queue_takes_every_client_event_and_nothing_else_with_one_active_consumer() -> None:
    settings = Settings(namespace="ns")
    queue = log_queue(settings)
    assert queue.name == "ns.sync.log"
    assert queue.durable
    assert sorted(b.routing_key for b in queue.bindings) == sorted(client_types())
    assert {b.exchange.name for b in queue.bindings} == {"ns.events"}
    assert all(CATALOGUE[b.routing_key].client_event for b in queue.bindings)
    assert queue.queue_arguments == {
        "x-single-active-consumer": True,
        "x-dead-letter-exchange": "ns.dead",
        "x-dead-letter-routing-key": "ns.sync.log",
    }
