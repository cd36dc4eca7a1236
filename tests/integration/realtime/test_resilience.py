"""Whatever clients send and whatever the broker does, the process stays up and serving."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import socketio
import websocket

from shared.auth import issue_token
from shared.config import Settings
from shared.events import Envelope, make_event
from tests.integration.realtime.support import (
    Listener,
    RealtimeProcess,
    open_listener,
    publish,
    running_realtime,
    wait_for,
)
from tests.support.tcpproxy import TcpProxy


def _message(audience: list[str]) -> Envelope:
    data = {"message": {"id": "m1", "body": "still here"}, "conversation_id": "c1"}
    return make_event("conversations.message.created", data, producer="test", audience=audience)


def _still_serving(rt: RealtimeProcess, settings: Settings, listener: Listener) -> None:
    """Up, healthy, ready, and still delivering to a client connected before the trouble."""
    assert rt.alive(), rt.log()
    assert rt.status("/healthz") == 200
    assert rt.status("/readyz") == 200
    assert listener.client.connected
    event = _message(["user-a"])
    publish(settings, event)
    assert wait_for(lambda: listener.got(event.id)), rt.log()


def test_unknown_events_and_odd_payloads_from_a_client_are_ignored(
    realtime_process: RealtimeProcess, settings: Settings, connect: Callable[[str], Listener]
) -> None:
    alice, mallory = connect("user-a"), connect("user-m")
    for name, payload in [
        ("no.such.event", {"x": 1}),
        ("message.created", None),
        ("connect", {"token": issue_token(settings, "user-a")}),
        ("disconnect", "now"),
        ("*", [1, 2, 3]),
        ("x" * 10_000, "long name"),
        ("binary", b"\x00\xff" * 100),
    ]:
        mallory.client.emit(name, payload)
    mallory.client.call("with.ack", {"a": 1}, timeout=5)
    _still_serving(realtime_process, settings, alice)
    assert mallory.client.connected
    # A client-sent "connect" event must not have joined mallory to user-a's room.
    assert mallory.received == []


def _raw_socket(rt: RealtimeProcess, settings: Settings, token: str | None) -> websocket.WebSocket:
    """A bare engine.io websocket, signed in to the default namespace when given a token."""
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{rt.port}/{settings.socketio_path}/?EIO=4&transport=websocket", timeout=5
    )
    assert ws.recv().startswith("0")  # engine.io open
    if token is not None:
        ws.send("40" + json.dumps({"token": token}))
        assert ws.recv().startswith("40")
    return ws


GARBAGE: list[str | bytes] = [
    "",
    "hello",
    "4",
    "42",
    "42[",
    "42{}",
    "42[]",
    "42[1,2,3]",
    '42["x",',
    "43[]",
    "45-[]",
    "451-garbage",
    "49",
    "40garbage",
    "41",
    '42/nope,["x"]',
    "9",
    "6",
    "1",
    "4" + "9" * 500,
    b"\x00\xff\xfe",
    "x" * 200_000,
]


@pytest.mark.parametrize("signed_in", [True, False], ids=["signed-in", "anonymous"])
def test_malformed_packets_from_a_client_do_not_hurt_the_process(
    realtime_process: RealtimeProcess, settings: Settings, connect: Callable[[str], Listener], signed_in: bool
) -> None:
    alice = connect("user-a")
    token = issue_token(settings, "user-m") if signed_in else None
    for frame in GARBAGE:
        ws = _raw_socket(realtime_process, settings, token)
        try:
            if isinstance(frame, bytes):
                ws.send_binary(frame)
            else:
                ws.send(frame)
        except (websocket.WebSocketException, OSError):
            pass  # the server may hang up on garbage; that is fine
        finally:
            ws.close()
    _still_serving(realtime_process, settings, alice)
    # Garbage is the sender's problem: a one-line warning at most, never a traceback in the log.
    assert "Traceback" not in realtime_process.log()


def test_a_flood_of_connects_with_bad_tokens_leaves_the_process_serving(
    realtime_process: RealtimeProcess, settings: Settings, connect: Callable[[str], Listener]
) -> None:
    alice = connect("user-a")

    def refused(i: int) -> bool:
        try:
            open_listener(realtime_process.url, settings, auth={"token": f"bad-{i}"})
        except socketio.exceptions.ConnectionError:
            return True
        return False

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(refused, range(200)))
    assert all(outcomes)
    _still_serving(realtime_process, settings, alice)


def test_a_broker_outage_keeps_sockets_open_and_delivers_what_was_published_meanwhile(
    settings: Settings, tmp_path: Path
) -> None:
    proxy = TcpProxy("127.0.0.1", 5672)
    try:
        via_proxy = settings.amqp_url.replace(":5672", f":{proxy.port}")
        with running_realtime(settings, tmp_path / "realtime.log", amqp_url=via_proxy) as rt:
            alice = open_listener(rt.url, settings, auth={"token": issue_token(settings, "user-a")})
            try:
                proxy.cut()
                # Generous bounds: this is about eventually delivering, and a loaded CI machine is slow.
                assert wait_for(lambda: not rt.ready(), timeout=30), rt.log()
                assert rt.status("/healthz") == 200
                during = _message(["user-a"])
                publish(settings, during)  # straight to the broker: it waits in the process's queue

                proxy.restore()
                assert wait_for(rt.ready, timeout=90), rt.log()
                assert wait_for(lambda: alice.got(during.id), timeout=30), rt.log()
                # And since a queue may not outlive every outage, clients are told to catch up.
                assert alice.events("resync") == [{"reason": "bus_reconnected"}]
                _still_serving(rt, settings, alice)
            finally:
                alice.client.disconnect()
    finally:
        proxy.close()


def _queues(prefix: str) -> list[str]:
    out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "name"], capture_output=True, text=True, timeout=60)
    return sorted(n.strip() for n in out.stdout.splitlines() if n.strip().startswith(prefix))


@pytest.mark.skipif(not shutil.which("rabbitmqctl"), reason="needs rabbitmqctl to list queues")
def test_sigterm_stops_the_process_cleanly_and_removes_its_queues(
    realtime_process: RealtimeProcess, settings: Settings
) -> None:
    prefix = f"{settings.namespace}.realtime."
    queues = _queues(prefix)
    assert len(queues) == 2 and queues[1] == f"{queues[0]}.dead"
    assert realtime_process.stop() == 0, realtime_process.log()
    assert _queues(prefix) == []
