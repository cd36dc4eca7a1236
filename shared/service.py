"""Run one service process: its RPC workers, its outbox relay and its event consumers."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from kombu import Queue

from shared.bus import ConsumerSpec, EventConsumer, consumer_queue, start_consumer
from shared.config import Settings
from shared.outbox import OutboxRelay, start_relay
from shared.rpc import Method, RpcServer

log = logging.getLogger(__name__)


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
    running = RunningService()
    if consume:
        running.consumers = [start_consumer(settings, spec)[0] for spec in definition.consumers(settings)]
        running.workers = definition.workers(settings)
        for worker in running.workers:
            threading.Thread(target=worker.run, name=f"{definition.name}-worker", daemon=True).start()
    if relay and definition.outbox:
        running.relay = start_relay(settings, definition.name, settings.database_url(definition.name))[0]
    if rpc:
        running.rpc = RpcServer(settings, definition.name, definition.methods(settings)).start()
    return running


def main(definition: ServiceDefinition) -> None:
    """`python -m services.<name> [--no-rpc] [--no-relay] [--no-consumers]`: run until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(prog=f"services.{definition.name}")
    parser.add_argument("--no-rpc", action="store_true", help="do not serve RPC requests")
    parser.add_argument("--no-relay", action="store_true", help="do not relay the outbox")
    parser.add_argument("--no-consumers", action="store_true", help="do not consume events")
    args = parser.parse_args()
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format=f"%(asctime)s {definition.name} %(levelname)s %(message)s")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    running = start_service(
        settings, definition, rpc=not args.no_rpc, relay=not args.no_relay, consume=not args.no_consumers
    )
    log.info("%s ready", definition.name)
    stopped.wait()
    running.stop()
