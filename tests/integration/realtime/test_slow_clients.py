"""Clients that stop reading or stop answering cost the server a bounded amount, then their connection.

The clients here speak Engine.IO/Socket.IO by hand over a bare websocket, so a test decides
exactly when they read and whether they answer pings; python-socketio's own client would
do both by itself.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import websocket

from realtime.server import DISCONNECT_REASON
from shared.auth import issue_token
from shared.config import Settings
from shared.events import Envelope, make_event
from tests.integration.realtime.support import RealtimeProcess, open_listener, publish, running_realtime, wait_for

PING_INTERVAL = 1.0
PING_TIMEOUT = 1.0
MAX_PENDING = 50
BODY_CHARS = 64 * 1024
SLOW_EVENTS = 1_000
# Unbounded, the backlog is SLOW_EVENTS packets of BODY_CHARS each: RSS grew by 66 MB when
# measured. Bounded, it is at most MAX_PENDING queued plus one batch the writer holds,
# ~7 MB; RSS grew by 3 MB.
RSS_GROWTH_LIMIT_KB = 32 * 1024


@dataclass
class RawClient:
    """A Socket.IO client by hand: it reads, and answers pings, only when a test says so."""

    ws: websocket.WebSocket
    events: list[tuple[str, object]] = field(default_factory=list)
    pings: int = 0
    closed: bool = False

    @classmethod
    def connect(cls, rt: RealtimeProcess, settings: Settings, user_id: str, *, receive_buffer: int = 0) -> RawClient:
        # A small receive buffer set before connecting keeps the TCP window small, so a
        # client that stops reading pushes back on the server after a few packets.
        sockopt = ((socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer),) if receive_buffer else ()
        url = f"ws://127.0.0.1:{rt.port}/{settings.socketio_path.strip('/')}/?EIO=4&transport=websocket"
        ws = websocket.create_connection(url, timeout=5, sockopt=sockopt)
        opened = ws.recv()
        assert opened.startswith("0"), opened  # Engine.IO open
        ws.send("40" + json.dumps({"token": issue_token(settings, user_id)}))
        connected = ws.recv()
        assert connected.startswith("40"), connected  # Socket.IO connect accepted
        return cls(ws)

    def listen(self, seconds: float, *, answer_pings: bool) -> None:
        """Read for up to `seconds`, recording events and pings, or until the server closes."""
        deadline = time.monotonic() + seconds
        while not self.closed and (left := deadline - time.monotonic()) > 0:
            self.ws.settimeout(left)
            try:
                opcode, data = self.ws.recv_data(control_frame=True)
            except websocket.WebSocketTimeoutException:
                return
            except (websocket.WebSocketConnectionClosedException, ConnectionError):
                self.closed = True
                return
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                self.closed = True
            elif opcode == websocket.ABNF.OPCODE_TEXT:
                self._record(data.decode(), answer_pings=answer_pings)

    def _record(self, frame: str, *, answer_pings: bool) -> None:
        if frame == "2":  # Engine.IO ping
            self.pings += 1
            if answer_pings:
                self.ws.send("3")
        elif frame == "1":  # Engine.IO close: the socket itself closes next
            pass
        elif frame.startswith("42"):  # Socket.IO event on the default namespace
            name, *args = json.loads(frame[2:])
            self.events.append((name, args[0] if args else None))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def close(self) -> None:
        self.ws.close(timeout=1)


def _memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of a process, in kB."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}


def _message(user_id: str, body: str) -> Envelope:
    data = {"message": {"id": f"m-{len(body)}", "body": body}, "conversation_id": "c1"}
    return make_event("conversations.message.created", data, producer="test", audience=[user_id])


StartRealtime = Callable[..., RealtimeProcess]


@pytest.fixture
def realtime_with(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StartRealtime]:
    """`realtime_with(ping_interval=1)`: `python -m realtime` with REALTIME_PING_INTERVAL=1, stopped after the test."""
    with contextlib.ExitStack() as stack:

        def start(**limits: float) -> RealtimeProcess:
            # running_realtime hands its own environment on to the process.
            for name, value in limits.items():
                monkeypatch.setenv(f"REALTIME_{name.upper()}", str(value))
            return stack.enter_context(running_realtime(settings, tmp_path / "realtime.log"))

        yield start


def test_a_client_that_stops_answering_pings_is_dropped_after_interval_plus_timeout(
    settings: Settings, realtime_with: StartRealtime
) -> None:
    rt = realtime_with(ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT)
    healthy = open_listener(rt.url, settings, auth={"token": issue_token(settings, "user-b")})
    # A control that differs only in answering: the drop must be the silence, not the short settings.
    answering = RawClient.connect(rt, settings, "user-c")
    outlive = 2 * (PING_INTERVAL + PING_TIMEOUT) + 1
    answering_thread = threading.Thread(target=answering.listen, args=(outlive,), kwargs={"answer_pings": True})
    answering_thread.start()
    dead = RawClient.connect(rt, settings, "user-a")
    connected_at = time.monotonic()
    try:
        dead.listen(10, answer_pings=False)
        dropped_after = time.monotonic() - connected_at
        assert dead.closed
        assert dead.pings >= 1  # it was asked, and did not answer
        # On websocket, python-engineio's read timeout: interval + timeout after the client last spoke.
        assert PING_INTERVAL <= dropped_after < PING_INTERVAL + PING_TIMEOUT + 0.75, dropped_after

        answering_thread.join(outlive + 5)
        assert not answering.closed and answering.pings >= 3
        assert healthy.client.connected
        event = _message("user-b", "still here")
        publish(settings, event)
        assert wait_for(lambda: healthy.got(event.id))
    finally:
        healthy.client.disconnect()
        answering.close()
        dead.close()


def test_a_long_polling_client_that_stops_polling_is_dropped_within_interval_plus_twice_timeout(
    settings: Settings, realtime_with: StartRealtime
) -> None:
    rt = realtime_with(ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT)
    base = f"{rt.url}/{settings.socketio_path.strip('/')}/?EIO=4&transport=polling"
    opened = requests.get(base, timeout=5)
    connected_at = time.monotonic()
    session = f"{base}&sid={json.loads(opened.text[1:])['sid']}"
    token = json.dumps({"token": issue_token(settings, "user-a")})
    assert requests.post(session, data="40" + token, timeout=5).status_code == 200

    time.sleep(PING_INTERVAL + 0.3)
    # Still there once pinged (the poll returns the connect and the ping, which goes unanswered) ...
    polled = requests.get(session, timeout=5)
    assert polled.status_code == 200 and "2" in polled.text.split("\x1e"), polled.text
    # ... and gone once python-engineio's sweep has seen the missing pong.
    time.sleep(max(0.0, connected_at + PING_INTERVAL + 2 * PING_TIMEOUT + 0.5 - time.monotonic()))
    assert requests.get(session, timeout=5).status_code == 400
    assert rt.alive()


def test_a_client_that_stops_reading_is_dropped_and_memory_stays_bounded(
    settings: Settings, realtime_with: StartRealtime
) -> None:
    # Default pings: nothing but the backlog may drop the slow client during the test.
    rt = realtime_with(max_pending_packets=MAX_PENDING)
    normal = open_listener(rt.url, settings, auth={"token": issue_token(settings, "user-b")})
    slow = RawClient.connect(rt, settings, "user-slow", receive_buffer=4096)
    try:
        before = _memory_kb(rt.process.pid)["VmRSS"]
        body = "x" * BODY_CHARS
        for_normal: list[str] = []
        for start in range(0, SLOW_EVENTS, 100):
            barrier = _message("user-b", f"after {start}")
            for_normal.append(barrier.id)
            publish(settings, *(_message("user-slow", body) for _ in range(100)), barrier)

        # The other user's events keep flowing, and the last one comes after every slow one.
        assert wait_for(lambda: all(normal.got(event_id) for event_id in for_normal), timeout=60), normal.received
        assert rt.alive() and rt.ready()
        peak = _memory_kb(rt.process.pid)["VmHWM"]
        assert peak - before < RSS_GROWTH_LIMIT_KB, f"RSS grew {peak - before} kB"

        # Reading again, the slow client finds part of its backlog, the reason, and a closed socket.
        slow.listen(30, answer_pings=False)
        assert slow.closed
        names = slow.names()
        assert names[-1] == DISCONNECT_REASON, names[-5:]
        assert dict(slow.events)[DISCONNECT_REASON]["code"] == "too_slow"
        assert names.count("message.created") < SLOW_EVENTS // 2
        assert "too slow" in rt.log()
        # The dropped connection is gone: later events for that user go nowhere, and nothing breaks.
        later = _message("user-b", "later")
        publish(settings, _message("user-slow", "later"), later)
        assert wait_for(lambda: normal.got(later.id))
        assert rt.alive()
    finally:
        normal.client.disconnect()
        slow.close()
