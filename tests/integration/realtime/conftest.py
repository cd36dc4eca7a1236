"""A real `python -m realtime` subprocess per test, and Socket.IO clients that record what they get."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.auth import issue_token
from shared.config import Settings
from tests.integration.realtime.support import Listener, RealtimeProcess, open_listener, running_realtime


@pytest.fixture
def realtime_process(settings: Settings, tmp_path: Path) -> Iterator[RealtimeProcess]:
    with running_realtime(settings, tmp_path / "realtime.log") as rt:
        yield rt


@pytest.fixture
def connect(realtime_process: RealtimeProcess, settings: Settings) -> Iterator[Callable[[str], Listener]]:
    """`connect("user-a")`: a connected Listener with a valid token for that user."""
    opened: list[Listener] = []

    def _connect(user_id: str) -> Listener:
        listener = open_listener(realtime_process.url, settings, auth={"token": issue_token(settings, user_id)})
        opened.append(listener)
        return listener

    yield _connect
    for listener in opened:
        listener.client.disconnect()
