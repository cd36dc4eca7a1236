"""A connection that falls too far behind is dropped before more is queued for it.

The real python-socketio server, on threads, driven through its WSGI app over the
long-polling transport: nothing reads a connection's queue until the test polls, which is
exactly a client that has stopped reading. No network and no broker: events go straight
into the feed's handler.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from realtime.server import (
    DISCONNECT_REASON,
    Limits,
    RealtimeServer,
    create_server,
)
from shared.auth import issue_token
from shared.config import Settings
from shared.events import Envelope, make_event

LIMIT = 3
SETTINGS = Settings(realtime_async_mode="threading")
_seq = itertools.count(1)


@pytest.fixture
def server() -> Iterator[RealtimeServer]:
    server = create_server(SETTINGS, Limits(max_pending_packets=LIMIT))
    yield server
    server.sio.shutdown()


def _request(server: RealtimeServer, method: str, query: str, body: str = "") -> tuple[int, list[str]]:
    """One Engine.IO long-polling request: its status and the packets in its body."""
    raw = body.encode()
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": f"/{SETTINGS.socketio_path}/",
        "QUERY_STRING": f"EIO=4&transport=polling&{query}",
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "test",
        "REMOTE_ADDR": "127.0.0.1",
    }
    status: list[str] = []
    chunks = server.app(environ, lambda s, headers, exc_info=None: status.append(s))
    return int(status[0].split()[0]), b"".join(chunks).decode().split("\x1e")


@dataclasses.dataclass
class Polling:
    """A long-polling client that reads only when asked to."""

    server: RealtimeServer
    eio_sid: str
    connection: Any  # python-engineio's socket, kept to look at its queue after it is dropped

    @classmethod
    def connect(cls, server: RealtimeServer, user_id: str) -> Polling:
        status, [opened] = _request(server, "GET", "")
        assert status == 200 and opened.startswith("0"), opened
        eio_sid = json.loads(opened[1:])["sid"]
        token = json.dumps({"token": issue_token(SETTINGS, user_id)})
        assert _request(server, "POST", f"sid={eio_sid}", "40" + token)[0] == 200
        client = cls(server, eio_sid, server.sio.eio.sockets[eio_sid])
        assert client.poll()[0].startswith("0{")  # Socket.IO connect accepted
        return client

    def pending(self) -> int:
        return self.connection.queue.qsize()

    def poll(self) -> list[str]:
        """Everything waiting for this client (never blocks: call it only when something is)."""
        status, packets = _request(self.server, "GET", f"sid={self.eio_sid}")
        assert status == 200, packets
        return [p[1:] for p in packets]  # without the Engine.IO message type

    def refused(self) -> bool:
        """Whether the server has closed this session (on a live one, this waits for a packet)."""
        return _request(self.server, "GET", f"sid={self.eio_sid}")[0] == 400

    def queued(self) -> list[Any]:
        """What python-engineio still holds for this client, taken off its queue."""
        queue, packets = self.connection.queue, []
        while not queue.empty():
            packets.append(queue.get_nowait())
        return packets


def _event(*audience: str) -> Envelope:
    data = {"message": {"id": "m1", "body": "hello"}, "conversation_id": "c1"}
    event = make_event("conversations.message.created", data, producer="test", audience=list(audience))
    return dataclasses.replace(event, seq=next(_seq))


def _events(packets: list[str]) -> list[str]:
    return [json.loads(p[1:])[0] for p in packets if p.startswith("2")]


def test_a_connection_up_to_the_limit_keeps_everything(server: RealtimeServer) -> None:
    alice = Polling.connect(server, "user-a")
    for _ in range(LIMIT):
        server.feed.deliver(_event("user-a"))
    assert alice.pending() == LIMIT
    assert _events(alice.poll()) == ["message.created"] * LIMIT


def test_a_connection_past_the_limit_is_dropped_with_its_backlog_before_the_next_event(
    server: RealtimeServer, caplog: pytest.LogCaptureFixture
) -> None:
    alice = Polling.connect(server, "user-a")
    for _ in range(LIMIT + 1):
        server.feed.deliver(_event("user-a"))
    assert alice.pending() == LIMIT + 1

    with caplog.at_level(logging.WARNING, logger="realtime.server"):
        server.feed.deliver(_event("user-a"))

    # The backlog is gone; what is left is the reason, python-engineio's close, and its end marker.
    reason, close, end = alice.queued()
    assert reason.data.startswith("2") and json.loads(reason.data[1:]) == [
        DISCONNECT_REASON,
        {
            "code": "too_slow",
            "message": "The connection fell too far behind; reconnect and catch up with GET /api/v1/sync.",
            "details": {"max_pending_packets": LIMIT},
        },
    ]
    assert close.encode() == "1" and end is None
    # Python-socketio knows it is gone: out of its room, disconnect handled, session refused.
    assert not server.sio.manager.rooms.get("/", {}).get("user:user-a")
    assert server.expiry.expired(float("inf")) == []
    assert alice.refused()
    assert "too slow: 4 packets were not yet written (limit 3)" in caplog.text


def test_only_the_connection_that_falls_behind_is_dropped(server: RealtimeServer) -> None:
    laptop, phone, bob = (Polling.connect(server, user) for user in ("user-a", "user-a", "user-b"))
    received = []
    for _ in range(2 * LIMIT):
        server.feed.deliver(_event("user-a", "user-b"))
        received += _events(laptop.poll())  # the laptop keeps up, the phone and bob never read
    assert received == ["message.created"] * 2 * LIMIT
    assert phone.refused() and bob.refused()
    server.feed.deliver(_event("user-a", "user-b"))
    assert _events(laptop.poll()) == ["message.created"]


def test_a_dropped_connection_is_not_dropped_again(server: RealtimeServer) -> None:
    alice = Polling.connect(server, "user-a")
    for _ in range(LIMIT + 2):
        server.feed.deliver(_event("user-a"))
    assert [p.encode() for p in alice.queued() if p is not None][1:] == ["1"]
    for _ in range(LIMIT + 2):
        server.feed.deliver(_event("user-a"))  # nobody of user-a is here any more: a no-op
    assert alice.queued() == []


def test_limits_come_from_the_environment_with_the_defaults_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Limits.from_settings(Settings.from_env()) == Limits(25.0, 15.0, 1000)
    monkeypatch.setenv("REALTIME_PING_INTERVAL", "1")
    monkeypatch.setenv("REALTIME_PING_TIMEOUT", "0.5")
    monkeypatch.setenv("REALTIME_MAX_PENDING_PACKETS", "20")
    assert Limits.from_settings(Settings.from_env()) == Limits(1.0, 0.5, 20)


@pytest.mark.parametrize(
    "environ",
    [{"REALTIME_MAX_PENDING_PACKETS": "0"}, {"REALTIME_PING_TIMEOUT": "-1"}, {"REALTIME_PING_INTERVAL": "soon"}],
)
def test_limits_that_make_no_sense_are_refused(environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError):
        Limits.from_settings(Settings.from_env())


def test_a_dead_client_is_dropped_within_a_minute_on_either_transport() -> None:
    # websocket: after ping_interval + ping_timeout of silence (python-engineio's read timeout);
    # long-polling: its sweep visits each connection once per ping_timeout, so up to one more.
    defaults = Settings()
    assert defaults.realtime_ping_interval + defaults.realtime_ping_timeout < 60
    assert defaults.realtime_ping_interval + 2 * defaults.realtime_ping_timeout < 60
