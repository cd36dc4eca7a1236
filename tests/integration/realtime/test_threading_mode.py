"""The async mode is one setting: the same server code runs on plain threads, no eventlet."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from realtime.server import RealtimeServer, create_server
from shared.auth import issue_token
from shared.config import Settings
from shared.events import make_event
from tests.integration.realtime.support import open_listener, publish, wait_for


@pytest.fixture
def threaded(settings: Settings) -> Iterator[tuple[RealtimeServer, str]]:
    server = create_server(dataclasses.replace(settings, realtime_async_mode="threading"))
    # Werkzeug's threaded server hands python-socketio the raw socket it needs for websockets.
    http: BaseWSGIServer = make_server("127.0.0.1", 0, server.app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        yield server, f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()
        server.stop(timeout=5)


def test_the_same_server_code_serves_and_delivers_on_threads(
    threaded: tuple[RealtimeServer, str], settings: Settings
) -> None:
    server, url = threaded
    assert not server.ready  # nothing consumes before start()
    server.start()
    assert wait_for(lambda: server.ready)
    alice = open_listener(url, settings, auth={"token": issue_token(settings, "user-a")})
    try:
        data = {"message": {"id": "m1", "body": "threads"}, "conversation_id": "c1"}
        event = make_event("conversations.message.created", data, producer="test", audience=["user-a"])
        publish(settings, event)
        assert wait_for(lambda: alice.got(event.id))
    finally:
        alice.client.disconnect()
    assert server.sio.async_mode == "threading"


def test_readiness_follows_the_consumer(threaded: tuple[RealtimeServer, str]) -> None:
    server, _ = threaded
    server.start()
    assert wait_for(lambda: server.ready)
    server.stop(timeout=5)
    assert not server.ready
