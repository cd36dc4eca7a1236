"""A real service process (`python -m services.sync`): its /readyz tells the truth about the broker,
it starts without one and serves once it comes, and a loop that cannot go on ends it non-zero."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local import ROOT, settings_env
from services import sync
from shared.config import Settings
from shared.db import drop_database, migrate
from tests.support.tcpproxy import TcpProxy
from tests.support.waiting import free_port, wait_for


@pytest.fixture
def sync_db(settings: Settings) -> Iterator[Settings]:
    """A sync database of this test's own (the run's is shared by the sync tests)."""
    url = f"{settings.database_url('sync')}_{settings.namespace.rsplit('-', 1)[-1]}"
    own = dataclasses.replace(settings, database_urls={**settings.database_urls, "sync": url})
    migrate(url, sync.MIGRATIONS)
    yield own
    drop_database(url)


def _start(settings: Settings, log: Path, **env: str) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services.sync"],
            env={**os.environ, **settings_env(settings), "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO", **env},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _probe(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_service_started_without_its_broker_waits_unready_and_serves_within_two_seconds_of_it(
    sync_db: Settings, tmp_path: Path
) -> None:
    proxy = TcpProxy("127.0.0.1", 5672)
    proxy.cut()
    port = free_port()
    env = {"AMQP_URL": f"amqp://guest:guest@127.0.0.1:{proxy.port}//", "HEALTH_PORT": str(port)}
    proc = _start(sync_db, tmp_path / "sync.log", **env)
    try:
        assert wait_for(lambda: _probe(port, "/healthz")[0] == 200, timeout=20), (tmp_path / "sync.log").read_text()
        time.sleep(3.0)  # longer than any back-off step while the outage is young
        status, body = _probe(port, "/readyz")
        assert status == 503 and proc.poll() is None
        assert body["database"] == "ok" and not any(loop["ready"] for loop in body["loops"].values())
        proxy.restore()
        started = time.monotonic()
        assert wait_for(lambda: _probe(port, "/readyz")[0] == 200, timeout=10), _probe(port, "/readyz")
        assert time.monotonic() - started < 2.0
        log = (tmp_path / "sync.log").read_text()
        # One line per loop for the whole outage, not one per retry.
        assert log.count("sync logger: ") <= 3, log
    finally:
        _stop(proc)
        proxy.close()


def test_a_service_whose_loop_stops_moving_exits_non_zero_for_its_supervisor_to_restart(
    sync_db: Settings, tmp_path: Path
) -> None:
    port = free_port()
    # Consumers look after themselves once a second: a stall limit below that is broken at once.
    proc = _start(sync_db, tmp_path / "sync.log", HEALTH_PORT=str(port), LOOP_STALL_SECONDS="0.2")
    try:
        assert proc.wait(timeout=30) == 1
        log = (tmp_path / "sync.log").read_text()
        assert "has not moved for" in log and "cannot keep its loops running" in log, log
    finally:
        _stop(proc)
