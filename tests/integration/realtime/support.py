"""Helpers for the realtime tests: the process as a subprocess, recording clients, publishing."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio

from shared.bus import ConfirmingPublisher
from shared.config import Settings
from shared.events import LOGGED_PREFIX, Envelope
from tests.support.waiting import free_port, wait_for  # noqa: F401  (re-exported for the realtime tests)

REPO = Path(__file__).resolve().parents[3]


@dataclass
class RealtimeProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def status(self, path: str) -> int:
        return requests.get(f"{self.url}{path}", timeout=5).status_code

    def ready(self) -> bool:
        try:
            return self.status("/readyz") == 200
        except requests.RequestException:
            return False

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL if it does not exit; the exit code."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


@contextlib.contextmanager
def running_realtime(settings: Settings, log_path: Path, *, amqp_url: str | None = None) -> Iterator[RealtimeProcess]:
    """Start `python -m realtime` for this test's namespace, wait until it consumes, always stop it."""
    port = free_port()
    env = {
        **os.environ,
        "IM_NAMESPACE": settings.namespace,
        "AMQP_URL": amqp_url or settings.amqp_url,
        "JWT_SECRET": settings.jwt_secret,
        "CURSOR_SECRET": settings.cursor_secret,
        "JWT_ISSUER": settings.jwt_issuer,
        "JWT_AUDIENCE": settings.jwt_audience,
        "REALTIME_HOST": "127.0.0.1",
        "REALTIME_PORT": str(port),
        "SOCKETIO_PATH": settings.socketio_path,
        "REALTIME_ASYNC_MODE": os.environ.get("REALTIME_ASYNC_MODE", "eventlet"),
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "realtime"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    rt = RealtimeProcess(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:
        if not wait_for(lambda: rt.ready() or not rt.alive(), timeout=20) or not rt.alive():
            pytest.fail(f"realtime did not become ready:\n{rt.log()}")
        yield rt
    finally:
        rt.stop()


@dataclass
class Listener:
    """A Socket.IO client that records every event it receives, in order."""

    client: socketio.Client
    received: list[tuple[str, Any]] = field(default_factory=list)

    def events(self, name: str) -> list[Any]:
        return [data for event, data in self.received if event == name]

    def got(self, event_id: str) -> bool:
        return any(isinstance(d, dict) and d.get("event_id") == event_id for _, d in self.received)


def open_listener(url: str, settings: Settings, *, auth: Any = None, headers: dict[str, str] | None = None) -> Listener:
    """Connect over websocket; raises socketio.exceptions.ConnectionError when refused."""
    client = socketio.Client(reconnection=False)
    listener = Listener(client)
    client.on("*", lambda event, data=None: listener.received.append((event, data)))
    client.on("connect_error", lambda data=None: listener.received.append(("connect_error", data)))
    client.connect(
        url,
        auth=auth,
        headers=headers or {},
        transports=["websocket"],
        socketio_path=settings.socketio_path,
        wait_timeout=5,
    )
    return listener


_positions = itertools.count(1)


def publish(settings: Settings, *events: Envelope) -> None:
    """Publish as the sync service's change logger does: `logged.<type>`, each with the next log position."""
    publisher = ConfirmingPublisher(settings)
    try:
        logged = [dataclasses.replace(e, seq=e.seq or next(_positions)) for e in events]
        publisher.publish([(e.id, LOGGED_PREFIX + e.type, e.to_json()) for e in logged])
    finally:
        publisher.close()
