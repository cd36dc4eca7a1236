"""Run one service process: its RPC workers, its outbox relay and its event consumers.

Every loop runs under `shared.supervise`, so no outage of the broker or the database ends one;
the process starts serving without waiting for either, and says whether it is ready (RPC
`health.check`, which the gateway's `/readyz` asks, and `/readyz` on `HEALTH_PORT`). A loop that
cannot be kept running ends the process with a non-zero code, for its supervisor to restart.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kombu import Queue
from sqlalchemy import text

from shared.bus import ConsumerSpec, EventConsumer, consumer_queue, start_consumer
from shared.config import Settings
from shared.db import transaction
from shared.errors import AppError
from shared.health import health_app, serve_health
from shared.outbox import OutboxRelay, oldest_waiting_seconds, start_relay
from shared.rpc import Caller, Method, RpcServer
from shared.supervise import PROCESS, start_thread, unavailable

log = logging.getLogger(__name__)

# After a fatal loop, a process that has not stopped by itself within this long is ended at once.
FATAL_EXIT_SECONDS = 15.0


class Worker(Protocol):
    """A long-running loop of a service besides RPC and plain consumers, with the queue it reads."""

    queue: Queue | None  # the queue it reads, if any
    ready: threading.Event

    def run(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class ServiceDefinition:
    name: str
    methods: Callable[[Settings], dict[str, Method]]
    consumers: Callable[[Settings], list[ConsumerSpec]] = lambda settings: []
    workers: Callable[[Settings], list[Worker]] = lambda settings: []
    outbox: bool = True

    def queues(self, settings: Settings) -> list[Queue]:
        """Every queue this service consumes from besides RPC, declared before anything publishes."""
        specs = [consumer_queue(settings, spec.name, spec.bindings) for spec in self.consumers(settings)]
        return specs + [w.queue for w in self.workers(settings) if w.queue is not None]

    def rpc_methods(self, settings: Settings) -> dict[str, Method]:
        """The service's own methods, and `health.check` (what the gateway's readiness asks)."""

        def health(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
            ready, report = readiness(settings, self)
            if not ready:
                raise AppError("unavailable", "The service is not ready.", {"service": self.name, **report})
            return {"ok": True, **report}

        return {**self.methods(settings), "health.check": health}


def readiness(settings: Settings, definition: ServiceDefinition) -> tuple[bool, dict[str, Any]]:
    """Ready when every loop of this process serves, the database answers, and the outbox keeps up."""
    report: dict[str, Any] = PROCESS.report()
    ready = PROCESS.ready()
    try:
        with transaction(settings.database_url(definition.name)) as session:
            session.execute(text("SELECT 1"))
            waited = oldest_waiting_seconds(session) if definition.outbox else 0.0
        report["database"] = "ok"
    except Exception as exc:  # noqa: BLE001  (readiness reports; it never fails the caller)
        report["database"] = "unavailable" if unavailable(exc) else f"error: {type(exc).__name__}"
        return False, report
    if definition.outbox:
        report["outbox_oldest_seconds"] = round(waited, 1)
        if waited > settings.outbox_stale_seconds:
            # Events are stored but not leaving: whatever the loops say, clients are not being told.
            ready = False
    return ready, report


@dataclass
class RunningService:
    rpc: RpcServer | None = None
    relay: OutboxRelay | None = None
    consumers: list[EventConsumer] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)

    def stop(self) -> None:
        for consumer in self.consumers:
            consumer.stop()
        for worker in self.workers:
            worker.stop()
        if self.relay is not None:
            self.relay.stop()
        if self.rpc is not None:
            self.rpc.stop()


def start_service(
    settings: Settings, definition: ServiceDefinition, *, rpc: bool = True, relay: bool = True, consume: bool = True
) -> RunningService:
    """Start every loop of the service without waiting for the broker or the database to answer."""
    running = RunningService()
    if consume:
        running.consumers = [start_consumer(settings, spec, wait=None)[0] for spec in definition.consumers(settings)]
        running.workers = definition.workers(settings)
        for worker in running.workers:
            start_thread(worker.run, f"{definition.name}-worker")
    if relay and definition.outbox:
        running.relay = start_relay(settings, definition.name, settings.database_url(definition.name))[0]
    if rpc:
        running.rpc = RpcServer(settings, definition.name, definition.rpc_methods(settings)).start(wait=None)
    return running


def main(definition: ServiceDefinition) -> None:
    """`python -m services.<name> [--no-rpc] [--no-relay] [--no-consumers]`: run until SIGTERM or Ctrl-C.

    Exits 0 when asked to stop, 1 when a loop could not be kept running.
    """
    parser = argparse.ArgumentParser(prog=f"services.{definition.name}")
    parser.add_argument("--no-rpc", action="store_true", help="do not serve RPC requests")
    parser.add_argument("--no-relay", action="store_true", help="do not relay the outbox")
    parser.add_argument("--no-consumers", action="store_true", help="do not consume events")
    args = parser.parse_args()
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format=f"%(asctime)s {definition.name} %(levelname)s %(message)s")
    stopped = threading.Event()
    exit_code = [0]

    def on_fatal(reason: str) -> None:
        exit_code[0] = 1
        stopped.set()
        # Stopping cleanly may hang on the very thing that failed: never wait for it for long.
        timer = threading.Timer(FATAL_EXIT_SECONDS, os._exit, (1,))
        timer.daemon = True
        timer.start()

    PROCESS.on_fatal(on_fatal)
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    running = start_service(
        settings, definition, rpc=not args.no_rpc, relay=not args.no_relay, consume=not args.no_consumers
    )
    if settings.health_port:
        app = health_app(lambda: readiness(settings, definition))
        serve_health(settings.health_host, settings.health_port, app)
    log.info("%s started", definition.name)
    stopped.wait()
    running.stop()
    sys.exit(exit_code[0])
