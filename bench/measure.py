"""What the benchmarks share: CPU accounting per process over a stretch of wall time."""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import socket
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploy.local import Stack
from shared.config import Settings

RESULTS = Path(__file__).parent / "results"


def write_report(name: str, report: dict[str, Any]) -> Path:
    """Keep a benchmark's figures as bench/results/<name>-<UTC time>.json; the file written."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2, default=str))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_settings(name: str) -> Settings:
    """This machine's settings, in a namespace and databases of the benchmark's own, on free ports."""
    gateway_port, realtime_port = free_port(), free_port()
    return dataclasses.replace(
        Settings.from_env(),
        namespace=f"{name}-{gateway_port}",
        db_prefix=f"im{name}",
        gateway_port=gateway_port,
        realtime_port=realtime_port,
        log_level="WARNING",
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


def stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    return {
        "p50": round(percentile(values, 50), 2),
        "p95": round(percentile(values, 95), 2),
        "p99": round(percentile(values, 99), 2),
        "max": round(max(values), 2),
        "mean": round(statistics.fmean(values), 2),
    }


_TICK = os.sysconf("SC_CLK_TCK")
# The broker and the database serve the system too, though they are not Stack processes.
SERVERS = {"postgres": ("postgres",), "rabbitmq": ("beam.smp",)}


def process_table() -> dict[int, tuple[int, float, str]]:
    """pid -> (parent pid, user + system CPU seconds, command name) of every live process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        table[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK, comm)
    return table


def descendants(table: dict[int, tuple[int, float, str]], root: int) -> set[int]:
    """A process and its live descendants (gunicorn's workers, Celery's pool)."""
    wanted = {root}
    changed = True
    while changed:
        changed = False
        for pid, (parent, _, _) in table.items():
            if parent in wanted and pid not in wanted:
                wanted.add(pid)
                changed = True
    return wanted


def tree_cpu(table: dict[int, tuple[int, float, str]], root: int) -> float:
    """CPU seconds of a process and its live descendants."""
    return sum(table[pid][1] for pid in descendants(table, root) if pid in table)


def rss_kb(pid: int) -> int:
    """Resident memory of one process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (one socket per simulated client); the Stack's
    children, the realtime process among them, inherit it. The limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def servers_cpu(table: dict[int, tuple[int, float, str]]) -> dict[str, float]:
    """CPU seconds of PostgreSQL and RabbitMQ, all of their processes (other users' work too)."""
    return {name: sum(cpu for _, cpu, comm in table.values() if comm in comms) for name, comms in SERVERS.items()}


def machine_jiffies() -> tuple[float, float, float]:
    """(busy, total, interrupts) CPU seconds of the whole machine since boot, all cores together."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / _TICK, sum(values) / _TICK, (values[5] + values[6]) / _TICK


def queue_depths(settings: Settings) -> dict[str, int]:
    """Messages ready in each queue of the namespace (RPC and events; the realtime process's own
    queue has a random name and is left out): where a backlog builds, if one does."""
    from kombu import Connection

    from deploy.local import DEFINITIONS

    names = [settings.rpc_queue(name) for name in DEFINITIONS]
    names += [q.name for definition, _ in DEFINITIONS.values() for q in definition.queues(settings)]
    depths: dict[str, int] = {}
    with Connection(settings.amqp_url) as conn:
        channel = conn.channel()
        for name in names:
            try:
                _, count, _ = channel.queue_declare(name, passive=True)
                depths[name.removeprefix(f"{settings.namespace}.")] = count
            except Exception:  # noqa: BLE001  (a queue not there holds nothing; the channel is closed)
                channel = conn.channel()
    return {k: v for k, v in depths.items() if v}


def outbox_depths(settings: Settings) -> dict[str, int]:
    """Events still waiting in each service's outbox."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from deploy.local import DEFINITIONS

    waiting: dict[str, int] = {}
    for service, (definition, _) in DEFINITIONS.items():
        if not definition.outbox:
            continue
        engine = create_engine(settings.database_url(service), poolclass=NullPool)
        try:
            with engine.connect() as conn:
                waiting[service] = conn.execute(text("SELECT count(*) FROM outbox")).scalar_one()
        finally:
            engine.dispose()
    return {k: v for k, v in waiting.items() if v}


def wait_until_settled(stack: Stack, *, share: float = 0.05, window: float = 1.0, timeout: float = 600.0) -> float:
    """Wait until the system has no work of its own left: empty outboxes and queues, twice in a
    row, with its processes, PostgreSQL and RabbitMQ together under `share` of one core.

    A system just started still has work (the directory's events after the demo roster's import
    go through conversations one by one for a minute or more); a figure taken meanwhile charges
    that work to the benchmark. Seconds waited.
    """
    started = time.monotonic()
    settled = 0
    while time.monotonic() - started < timeout:
        meter = Meter(stack)
        time.sleep(window)
        used = meter.read()
        busy = sum(used["stack_cpu_s"].values()) + sum(used["server_cpu_s"].values())
        idle = busy / used["wall_s"] < share
        settled = settled + 1 if idle and not queue_depths(stack.settings) and not outbox_depths(stack.settings) else 0
        if settled >= 2:
            return round(time.monotonic() - started, 1)
    raise TimeoutError(f"the system still had work of its own after {timeout:.0f} s")


_DB_COUNTERS = ("xact_commit", "tup_inserted", "tup_updated", "tup_deleted", "tup_fetched")


def database_counters(settings: Settings) -> dict[str, dict[str, int]]:
    """PostgreSQL's running counts for each service's database: commits and rows written and read.

    The server publishes a backend's counts at most once a second while it is busy, so a
    difference over a stretch of many seconds is right to about a second's worth.
    """
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.pool import NullPool

    from deploy.local import DEFINITIONS

    names = {make_url(settings.database_url(service)).database: service for service in DEFINITIONS}
    admin = create_engine(make_url(settings.database_url("sync")).set(database="postgres"), poolclass=NullPool)
    try:
        with admin.connect() as conn:
            rows = conn.execute(
                text(f"SELECT datname, {', '.join(_DB_COUNTERS)} FROM pg_stat_database WHERE datname = ANY(:names)"),
                {"names": list(names)},
            ).all()
    finally:
        admin.dispose()
    return {names[r.datname]: {c: int(getattr(r, c)) for c in _DB_COUNTERS} for r in rows}


def per_message(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]], count: int) -> dict[str, Any]:
    """Commits and rows per message sent, per service database and summed over all of them."""
    result: dict[str, Any] = {}
    for counter in _DB_COUNTERS:
        each = {
            service: round((after[service][counter] - before.get(service, {}).get(counter, 0)) / count, 2)
            for service in after
        }
        result[counter] = {"total": round(sum(each.values()), 2), **{k: v for k, v in each.items() if v}}
    return result


class Meter:
    """CPU used over one stretch of wall time: by the generator, each Stack process, PostgreSQL,
    RabbitMQ, and whatever else runs on the machine (on a shared machine, other work)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.start = self._sample()

    def _sample(self) -> dict[str, Any]:
        table = process_table()
        return {
            "table": {pid: cpu for pid, (_, cpu, _) in table.items()},
            "wall": time.perf_counter(),
            "generator": time.process_time(),
            "stack": {name: tree_cpu(table, p.pid) for name, p in self.stack.processes.items()},
            "servers": servers_cpu(table),
            "machine": machine_jiffies(),
        }

    def read(self) -> dict[str, Any]:
        a, b = self.start, self._sample()
        wall = b["wall"] - a["wall"]
        generator = b["generator"] - a["generator"]
        stack = {name: round(b["stack"][name] - a["stack"].get(name, 0.0), 2) for name in b["stack"]}
        servers = {name: round(max(0.0, b["servers"][name] - a["servers"][name]), 2) for name in b["servers"]}
        busy = b["machine"][0] - a["machine"][0]
        capacity = max(1e-9, b["machine"][1] - a["machine"][1])
        ours = generator + sum(stack.values()) + sum(servers.values())
        interrupts = b["machine"][2] - a["machine"][2]
        # Every process's CPU over the stretch (new ones from zero), less ours: other work on the machine.
        everyone = sum(cpu - a["table"].get(pid, 0.0) for pid, cpu in b["table"].items())
        others = max(0.0, everyone - ours)
        other = max(0.0, busy - ours)
        return {
            "wall_s": round(wall, 2),
            "generator_cpu_s": round(generator, 2),
            "generator_share_of_one_core": round(generator / wall, 3) if wall else None,
            "generator_share_of_machine": round(generator / capacity, 3),
            "machine_busy_share": round(busy / capacity, 3),
            "stack_cpu_s": stack,
            "server_cpu_s": servers,
            # Everything else the machine did: other processes, interrupts, processes that came and went.
            "other_cpu_s": round(other, 2),
            "other_processes_cpu_s": round(others, 2),
            "interrupts_cpu_s": round(interrupts, 2),
            "other_processes_share_of_machine": round(others / capacity, 3),
        }
