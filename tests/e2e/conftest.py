"""End-to-end fixtures: the whole system started as `make run` starts it, on free ports."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio

from deploy.local import DEFINITIONS, Stack, delete_topology, setup
from shared.config import Settings
from shared.db import drop_database
from tests.support.waiting import free_port


@dataclass
class System:
    settings: Settings
    stack: Stack
    api: str
    realtime_urls: list[str]
    log_dir: Path

    def token(self, user_id: str) -> str:
        response = requests.post(f"{self.api}/auth/dev-token", json={"user_id": user_id}, timeout=10)
        response.raise_for_status()
        return response.json()["token"]

    def session(self, user_id: str) -> requests.Session:
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {self.token(user_id)}"
        return http

    def connect(self, user_id: str, *, index: int = 0, **kwargs: Any) -> socketio.Client:
        client = socketio.Client(reconnection=False, **kwargs)
        client.connect(
            self.realtime_urls[index], auth={"token": self.token(user_id)}, transports=["websocket"], wait_timeout=10
        )
        return client


@contextlib.contextmanager
def running_system(base_settings: Settings, log_dir: Path, *, realtime: int = 1, **overrides: Any) -> Iterator[System]:
    """The whole system as `make run` starts it, in its own namespace and databases, on free ports."""
    gateway_port = free_port()
    realtime_ports = [free_port() for _ in range(realtime)]
    urls = [f"http://127.0.0.1:{port}" for port in realtime_ports]
    settings = dataclasses.replace(
        base_settings,
        namespace=f"{base_settings.namespace}-e2e-{gateway_port}",
        db_prefix=f"{base_settings.db_prefix}_e2e",
        gateway_port=gateway_port,
        realtime_port=realtime_ports[0],
        realtime_public_url=",".join(urls),
        gateway_workers=2,
        rpc_timeout_seconds=2.0,
        log_level="WARNING",
        **overrides,
    )
    setup(settings)
    stack = Stack(settings).start(realtime_ports=realtime_ports, log_dir=log_dir)
    base = f"http://127.0.0.1:{gateway_port}"
    try:
        stack.wait_ready([f"{base}/readyz"] + [f"{url}/readyz" for url in urls])
        yield System(settings, stack, f"{base}/api/v1", urls, log_dir)
    finally:
        stack.stop()
        delete_topology(settings)
        for name in DEFINITIONS:
            drop_database(settings.database_url(name))


def service_warnings(log_dir: Path, *, lines: int = 20) -> str:
    """The last warnings, errors and tracebacks the processes logged: why a request failed, seen from inside."""
    found: list[str] = []
    for log in sorted(log_dir.glob("*.log")):
        noted = [
            f"{log.stem}: {line}"
            for line in log.read_text(errors="replace").splitlines()
            if any(mark in line for mark in (" WARNING ", " ERROR ", " CRITICAL ", "Traceback", "Error:"))
        ]
        found += noted[-lines:]
    return "\n".join(found) or "(none)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed end-to-end test carries what the services logged, so a failure on CI can be read, not guessed."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    system = getattr(item, "funcargs", {}).get("system")
    if report.failed and report.when == "call" and isinstance(system, System):
        report.sections.append(("Captured service warnings", service_warnings(system.log_dir)))


@pytest.fixture(scope="module")
def system(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    with running_system(base_settings, tmp_path_factory.mktemp("logs")) as running:
        yield running
