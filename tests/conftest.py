"""Test infrastructure: real RabbitMQ and PostgreSQL.

Named by AMQP_URL and POSTGRES_URL (defaults: this machine's local services). When neither
variable is set and the defaults do not answer, testcontainers starts both where Docker
runs; otherwise the suite stops with a clear message rather than faking anything.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import uuid
from urllib.parse import urlparse

import pytest

from shared.config import Settings


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url.replace("postgresql+psycopg", "postgresql"))
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def _start_containers() -> dict[str, str]:
    from testcontainers.postgres import PostgresContainer
    from testcontainers.rabbitmq import RabbitMqContainer

    pg = PostgresContainer("postgres:15", driver="psycopg").start()
    mq = RabbitMqContainer("rabbitmq:3.13").start()
    params = mq.get_connection_params()
    url = pg.get_connection_url()
    return {
        "POSTGRES_URL": url.rsplit("/", 1)[0],
        "AMQP_URL": f"amqp://guest:guest@{params.host}:{params.port}//",
    }


def _infrastructure() -> dict[str, str]:
    base = Settings.from_env()
    named = "AMQP_URL" in os.environ or "POSTGRES_URL" in os.environ
    if _reachable(base.amqp_url, 5672) and _reachable(base.postgres_url, 5432):
        return {}
    if not named and shutil.which("docker") and os.path.exists("/var/run/docker.sock"):
        return _start_containers()
    pytest.exit(
        f"RabbitMQ ({base.amqp_url}) or PostgreSQL ({base.postgres_url}) is not reachable; "
        "set AMQP_URL / POSTGRES_URL, start them, or run where Docker is available.",
        returncode=3,
    )


@pytest.fixture(scope="session")
def base_settings(request: pytest.FixtureRequest) -> Settings:
    """Settings naming the real services, with this run's own bus namespace and databases.

    Only tests that ask for it (directly or through `settings`) need RabbitMQ and PostgreSQL.
    """
    os.environ.update(_infrastructure())
    run = uuid.uuid4().hex[:8]
    settings = dataclasses.replace(
        Settings.from_env(),
        namespace=f"test-{run}",
        db_prefix=f"imtest_{run}",
        dev_login=True,
        rpc_timeout_seconds=5.0,
        rpc_threads=4,
    )
    request.addfinalizer(lambda: _cleanup(settings))
    return settings


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    """Each test gets its own bus namespace, so queues and exchanges never leak across tests."""
    return dataclasses.replace(base_settings, namespace=f"{base_settings.namespace}-{uuid.uuid4().hex[:6]}")


def _cleanup(settings: Settings) -> None:
    """Drop this run's databases, and its queues and exchanges where rabbitmqctl can list them."""
    import subprocess

    from kombu import Connection

    from shared.config import SERVICES
    from shared.db import drop_database

    for service in SERVICES:
        drop_database(settings.database_url(service))
    if not shutil.which("rabbitmqctl"):
        return
    listed = {}
    for kind in ("queues", "exchanges"):
        out = subprocess.run(["rabbitmqctl", "-q", f"list_{kind}", "name"], capture_output=True, text=True, timeout=60)
        listed[kind] = [n.strip() for n in out.stdout.splitlines() if n.strip().startswith(settings.namespace)]
    with Connection(settings.amqp_url) as conn:
        channel = conn.channel()
        for name in listed["queues"]:
            channel.queue_delete(name)
        for name in listed["exchanges"]:
            channel.exchange_delete(name)
