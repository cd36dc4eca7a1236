"""How many events a second the one active change logger can take: the log's ceiling.

Every client-visible event passes through the sync service's logger (one active consumer,
so positions are handed out in one order). This starts the sync service alone, in its own
namespace and database, publishes `--events` message events (two recipients each, as a
1:1 message has) into the events exchange as fast as the broker confirms them, and times
them until every one has come back as `logged.<type>` with its position. It reports the
rate, the logger's batch sizes as they came, and CPU per event of the sync process,
PostgreSQL and RabbitMQ. Figures go to bench/results/synclog-<time>.json and stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from kombu import Connection, Consumer, Exchange, Queue

from bench.measure import bench_settings, machine_jiffies, process_table, servers_cpu, tree_cpu, write_report
from deploy.local import ROOT, commands, delete_topology, settings_env, setup
from shared.bus import ConfirmingPublisher
from shared.db import drop_database
from shared.events import LOGGED_PREFIX, make_event


def message_event(i: int) -> tuple[str, str, str]:
    """(event id, routing key, body) of a 1:1 message event much like a real one."""
    conversation_id = str(uuid.uuid4())
    message = {
        "id": str(uuid.uuid4()),
        "conversation_id": conversation_id,
        "seq": i,
        "sender": {"id": "user-t-001", "name": "Ms Teacher", "avatar_url": None},
        "body": f"bench message {i}",
        "links": [],
        "attachments": [],
        "created_at": "2026-12-04T10:00:00.000000Z",
        "edited_at": None,
        "deleted": None,
        "client_id": f"synclog-{i}",
    }
    listed = {"id": conversation_id, "last_seq": i, "last_message": {"id": message["id"], "preview": message["body"]}}
    data = {"message": message, "conversation_id": conversation_id, "conversation": listed}
    envelope = make_event(
        "conversations.message.created",
        data,
        producer="conversations",
        audience=["user-t-001", f"user-s-{i % 900:04d}"],
    )
    return envelope.id, envelope.type, envelope.to_json()


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.synclog")
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()

    settings = bench_settings("synclog")
    drop_database(settings.database_url("sync"))
    setup(settings, demo=False)
    argv, extra = commands(settings)["sync"]
    env = {**os.environ, **settings_env(settings), **extra}
    sync = subprocess.Popen(argv, env=env, cwd=ROOT)
    received: set[str] = set()
    done = threading.Event()
    stop = threading.Event()
    try:
        exchange = Exchange(settings.exchange, type="topic", durable=True, no_declare=True)
        listening = threading.Event()

        def on_logged(message: Any) -> None:
            received.add(json.loads(message.body)["id"])
            message.ack()
            if len(received) >= args.events:
                done.set()

        def listen() -> None:
            with Connection(settings.amqp_url) as listener:
                queue = Queue(
                    f"{settings.namespace}.synclog-listener",
                    exchange=exchange,
                    routing_key=f"{LOGGED_PREFIX}#",
                    exclusive=True,
                    auto_delete=True,
                )
                with Consumer(listener.channel(), queues=[queue], on_message=on_logged, prefetch_count=2000):
                    listening.set()
                    while not stop.is_set() and not done.is_set():
                        try:
                            listener.drain_events(timeout=0.5)
                        except TimeoutError:
                            pass

        threading.Thread(target=listen, daemon=True).start()
        if not listening.wait(timeout=30):
            raise RuntimeError("could not listen for logged events")
        events = [message_event(i) for i in range(args.events)]
        publisher = ConfirmingPublisher(settings)
        # Until the sync service has bound its queue, events go nowhere: knock until one comes back.
        deadline = time.monotonic() + 60
        while not received:
            if time.monotonic() > deadline:
                raise RuntimeError("the sync service logged nothing within 60 s")
            publisher.publish([message_event(-1)])
            time.sleep(0.5)
        received.clear()
        table = process_table()
        cpu_before = tree_cpu(table, sync.pid)
        servers_before = servers_cpu(table)
        machine_before = machine_jiffies()
        started = time.perf_counter()
        for i in range(0, len(events), 500):
            publisher.publish(events[i : i + 500])
        published = time.perf_counter()
        if not done.wait(timeout=300):
            raise RuntimeError(f"only {len(received)} of {args.events} events came back logged")
        finished = time.perf_counter()
        table = process_table()
        sync_cpu = tree_cpu(table, sync.pid) - cpu_before
        servers = {k: v - servers_before[k] for k, v in servers_cpu(table).items()}
        machine_after = machine_jiffies()
        publisher.close()
    finally:
        stop.set()
        sync.terminate()
        sync.wait(timeout=15)
        delete_topology(settings)
    count = args.events
    elapsed = finished - started
    report = {
        "benchmark": "sync_change_logger_ceiling",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "events": count,
        "published_per_s": round(count / (published - started), 1),
        "logged_per_s": round(count / elapsed, 1),
        "cpu_ms_per_event": {
            "sync": round(sync_cpu * 1000 / count, 3),
            **{name: round(seconds * 1000 / count, 3) for name, seconds in servers.items()},
        },
        "machine_busy_share": round(
            (machine_after[0] - machine_before[0]) / max(1e-9, machine_after[1] - machine_before[1]), 3
        ),
    }
    out = write_report("synclog", report)
    print(json.dumps(report, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
