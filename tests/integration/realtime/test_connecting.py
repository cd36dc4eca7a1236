"""Connecting to the realtime server: the same bearer token as the HTTP API, or no connection."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import socketio
import websocket

from shared.auth import issue_token
from shared.config import Settings
from tests.integration.realtime.support import Listener, RealtimeProcess, open_listener, running_realtime
from tests.support.waiting import wait_for


def test_a_client_with_a_valid_token_connects(connect: Callable[[str], Listener]) -> None:
    listener = connect("user-a")
    assert listener.client.connected


def test_a_token_in_the_authorization_header_is_accepted_too(
    realtime_process: RealtimeProcess, settings: Settings
) -> None:
    headers = {"Authorization": f"Bearer {issue_token(settings, 'user-a')}"}
    listener = open_listener(realtime_process.url, settings, headers=headers)
    try:
        assert listener.client.connected
    finally:
        listener.client.disconnect()


def _refused_auth(settings: Settings) -> dict[str, Any]:
    forged = issue_token(dataclasses.replace(settings, jwt_secret="not-the-secret-but-just-as-long-as-it"), "user-a")
    return {
        "bad": {"token": forged},
        "garbage": {"token": "not-a-jwt"},
        "missing": None,
        "empty": {},
        "not_a_string": {"token": 42},
        "expired": {"token": issue_token(settings, "user-a", ttl_seconds=-60)},
    }


@pytest.mark.parametrize("case", ["bad", "garbage", "missing", "empty", "not_a_string", "expired"])
def test_a_connection_without_a_valid_token_is_refused_as_unauthenticated(
    realtime_process: RealtimeProcess, settings: Settings, case: str
) -> None:
    client = socketio.Client(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", lambda data=None: errors.append(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(
            realtime_process.url,
            auth=_refused_auth(settings)[case],
            transports=["websocket"],
            socketio_path=settings.socketio_path,
            wait_timeout=5,
        )
    assert not client.connected
    assert errors and errors[0]["data"]["code"] == "unauthenticated"
    assert errors[0]["message"]


def test_an_expired_token_is_told_that_the_session_expired(
    realtime_process: RealtimeProcess, settings: Settings
) -> None:
    client = socketio.Client(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", lambda data=None: errors.append(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(
            realtime_process.url,
            auth={"token": issue_token(settings, "user-a", ttl_seconds=-60)},
            transports=["websocket"],
            socketio_path=settings.socketio_path,
            wait_timeout=5,
        )
    assert "expired" in errors[0]["message"]


def test_health_and_readiness_answer_beside_socketio(realtime_process: RealtimeProcess) -> None:
    assert realtime_process.status("/healthz") == 200
    assert realtime_process.status("/readyz") == 200
    assert realtime_process.status("/nothing-here") == 404


def test_a_connection_is_closed_when_its_token_expires(realtime_process: RealtimeProcess, settings: Settings) -> None:
    short = open_listener(
        realtime_process.url, settings, auth={"token": issue_token(settings, "user-a", ttl_seconds=2)}
    )
    lasting = open_listener(realtime_process.url, settings, auth={"token": issue_token(settings, "user-b")})
    try:
        assert short.client.connected
        assert wait_for(lambda: not short.client.connected, timeout=20)
        assert lasting.client.connected
    finally:
        for listener in (short, lasting):
            if listener.client.connected:
                listener.client.disconnect()


def test_a_websocket_offering_permessage_deflate_is_served_uncompressed(
    realtime_process: RealtimeProcess, settings: Settings
) -> None:
    # Every browser offers it; accepted, each connection would keep a zlib compressor (~90 KB).
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{realtime_process.port}/{settings.socketio_path}/?EIO=4&transport=websocket",
        header=["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"],
        timeout=5,
    )
    try:
        assert "sec-websocket-extensions" not in {name.lower() for name in ws.getheaders()}
        assert ws.recv().startswith("0")  # the Engine.IO open packet, in plain text
        ws.send("40" + json.dumps({"token": issue_token(settings, "user-a")}))
        assert ws.recv().startswith("40")
    finally:
        ws.close()


# eventlet's WSGI server bounds itself (new connections wait to be accepted); aiohttp refuses them.
@pytest.mark.modes("aiohttp")
def test_past_its_connection_limit_a_process_refuses_new_sessions_on_asyncio(
    settings: Settings, tmp_path: Path, async_mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REALTIME_MAX_CONNECTIONS", "2")
    with running_realtime(settings, tmp_path / "realtime.log") as rt:
        held = [open_listener(rt.url, settings, auth={"token": issue_token(settings, u)}) for u in ("user-a", "user-b")]
        try:
            with pytest.raises(websocket.WebSocketBadStatusException) as refused:
                websocket.create_connection(
                    f"ws://127.0.0.1:{rt.port}/{settings.socketio_path}/?EIO=4&transport=websocket", timeout=5
                )
            assert refused.value.status_code == 503
            held.pop().client.disconnect()
            assert wait_for(lambda: _connects(rt, settings))
        finally:
            for listener in held:
                listener.client.disconnect()


def _connects(rt: RealtimeProcess, settings: Settings) -> bool:
    try:
        listener = open_listener(rt.url, settings, auth={"token": issue_token(settings, "user-c")})
    except socketio.exceptions.ConnectionError:
        return False
    listener.client.disconnect()
    return True
