"""A real `python -m realtime` subprocess per test, and Socket.IO clients that record what they get.

Every test runs once in each async mode `python -m realtime` serves (eventlet, aiohttp), or only
in the one REALTIME_ASYNC_MODE names.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.auth import issue_token
from shared.config import Settings
from tests.integration.realtime.support import Listener, RealtimeProcess, open_listener, running_realtime

MODES = ("eventlet", "aiohttp")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # The threading-mode tests build their own server in-process: one run is enough.
    if metafunc.module.__name__.endswith("test_threading_mode"):
        return
    # `@pytest.mark.modes(...)`: a behaviour only some modes have (the test says why).
    only = metafunc.definition.get_closest_marker("modes")
    modes = [m for m in MODES if os.environ.get("REALTIME_ASYNC_MODE", m) == m and (only is None or m in only.args)]
    metafunc.parametrize("async_mode", modes, indirect=True)


@pytest.fixture(autouse=True)
def async_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """The mode every realtime process of the test is started in (running_realtime hands it on)."""
    mode = getattr(request, "param", None)
    if mode is not None:
        monkeypatch.setenv("REALTIME_ASYNC_MODE", mode)
    return mode


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
