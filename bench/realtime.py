"""The realtime server under load: many connections on one process, and fan-out to a big course.

Starts the system as `make run` does (own namespace and databases), with one realtime
process, and adds a roster delta through the directory's importer: a class of
`--course-size` new students (`user-rtb-0001`..) taught by the demo teacher `user-t-001`.
The teacher's first message makes it a course conversation with every member. Then:

1. Connections: `--clients` authenticated Socket.IO clients (several per member of that
   course) on the one realtime process. Reports the process's RSS before and after, KB
   per connection, the connect rate, whether every client is still connected after a
   ping interval, and whether each one receives the teacher's messages.
2. Fan-out: every member connected once; the teacher sends `--messages` messages over
   HTTP, `--interval` seconds apart (open loop), each timed from the start of its HTTP
   request to its arrival at every member: p50/p95/p99/max over all (message, member) pairs.

The clients come from bench/wsload.py: one asyncio process speaking WebSocket, Engine.IO
v4 and Socket.IO v5 itself, so the generator is not the limit; its CPU time is reported.
Figures go to bench/results/realtime-<time>.json and to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import math
import os
import re
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kombu import Connection
from sqlalchemy import text

from bench.measure import Meter, bench_settings, raise_fd_limit, rss_kb, stats
from bench.wsload import Arrivals, Client, connect_many
from deploy.local import DEFINITIONS, Stack, delete_topology, setup
from shared.auth import issue_token
from shared.config import Settings
from shared.db import drop_database, transaction

RESULTS = Path(__file__).parent / "results"

TEACHER = "user-t-001"
BENCH_CLASS = "class-rtb"
BENCH_USER = "user-rtb-{:04d}"
# Arrival of "our" message: a message.created event whose text carries the tag in the body.
# Only the tag and the event name are relied on, not the payload's shape.
TAG = re.compile(r"rtbench~(\w+)~(\d+)~")
# The server's Engine.IO ping interval: it pings again only after the client's pong.
PING_INTERVAL = Settings().realtime_ping_interval
TARGET_KB_PER_CONNECTION = 30
TARGET_FANOUT_P99_MS = 500


# --- small helpers ----------------------------------------------------------------------------


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# --- the system -------------------------------------------------------------------------------


def bench_roster_delta(size: int) -> bytes:
    """A OneRoster delta: `size` new students and one class holding them, taught by TEACHER."""
    from services.directory.roster.generate import demo_roster_files, zip_files
    from services.directory.roster.parse import load_bundle

    demo = load_bundle(zip_files(demo_roster_files()))
    teacher_classes = {e.class_id for e in demo.enrollments if e.user_id == TEACHER}
    model = next(c for c in demo.classes if c.sourced_id in teacher_classes)  # same school and course as the teacher
    school, course = model.school_id, model.course_id
    stamp = "2024-09-02T08:00:00Z"

    def csv(header: str, rows: list[str]) -> str:
        return header + "\n" + "".join(row + "\n" for row in rows)

    users = [
        f"{BENCH_USER.format(i)},active,{stamp},true,{school},student,rtb.{i:04d},Bench,Student{i:04d}"
        for i in range(1, size + 1)
    ]
    enrollments = [f"enr-rtb-t,active,{stamp},{BENCH_CLASS},{school},{TEACHER},teacher"] + [
        f"enr-rtb-{i:04d},active,{stamp},{BENCH_CLASS},{school},{BENCH_USER.format(i)},student"
        for i in range(1, size + 1)
    ]
    manifest = ["manifest.version,1.0", "oneroster.version,1.1", "file.orgs,absent", "file.courses,absent"]
    manifest += ["file.users,delta", "file.classes,delta", "file.enrollments,delta"]
    return zip_files(
        {
            "manifest.csv": csv("propertyName,value", manifest),
            "users.csv": csv(
                "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,givenName,familyName",
                users,
            ),
            "classes.csv": csv(
                "sourcedId,status,dateLastModified,title,courseSourcedId,schoolSourcedId",
                [f"{BENCH_CLASS},active,{stamp},Realtime Bench Assembly,{course},{school}"],
            ),
            "enrollments.csv": csv(
                "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role", enrollments
            ),
        }
    )


def wait_until_quiet(settings: Settings, timeout: float = 90.0) -> float:
    """Until every consumer queue of the namespace is empty and no outbox holds a row (the
    demo roster's events are being followed at start); returns the seconds waited."""
    started = time.monotonic()
    quiet_since: float | None = None
    while time.monotonic() - started < timeout:
        pending = 0
        with Connection(settings.amqp_url) as conn:
            channel = conn.channel()
            for definition, _ in DEFINITIONS.values():
                for spec in definition.consumers(settings):
                    try:
                        _, count, _ = channel.queue_declare(settings.consumer_queue(spec.name), passive=True)
                        pending += count
                    except Exception:  # noqa: BLE001  (a queue not there holds nothing)
                        channel = conn.channel()
        for name in DEFINITIONS:
            try:
                with transaction(settings.database_url(name)) as session:
                    pending += session.execute(text("SELECT count(*) FROM outbox")).scalar() or 0
            except Exception:  # noqa: BLE001  (a service without an outbox)
                pass
        if pending == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 1.0:
                break
        else:
            quiet_since = None
        time.sleep(0.25)
    return round(time.monotonic() - started, 1)


def post(api: str, path: str, token: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
    """POST JSON with the standard library (cheap for the generator); (status, body, start time)."""
    parts = urlsplit(api)
    raw = json.dumps(body)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    start = time.perf_counter()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", f"{parts.path}{path}", raw, headers)
        response = conn.getresponse()
        payload = response.read()
    finally:
        conn.close()
    try:
        data = json.loads(payload) if payload else {}
    except ValueError:
        data = {"raw": payload[:300].decode(errors="replace")}
    return response.status, data, start


# --- the measurements -------------------------------------------------------------------------


class Sender:
    """The teacher's sends, open loop: each starts at its scheduled time on a worker thread."""

    def __init__(self, api: str, conversation_id: str, token: str) -> None:
        self.api, self.conversation_id, self.token = api, conversation_id, token
        self.pool = ThreadPoolExecutor(max_workers=8)
        self.sent: dict[str, dict[str, Any]] = {}

    def _send(self, tag: str) -> None:
        body = {"body": f"Realtime bench {tag} please ignore", "client_id": tag.strip("~").replace("~", "-")}
        try:
            status, data, start = post(self.api, f"/conversations/{self.conversation_id}/messages", self.token, body)
            http_ms = (time.perf_counter() - start) * 1000
            self.sent[tag] = {"start": start, "status": status, "http_ms": http_ms, "error": None}
            if status != 201:
                self.sent[tag]["error"] = f"{status}: {json.dumps(data)[:300]}"
        except Exception as exc:  # noqa: BLE001  (counted and reported)
            self.sent[tag] = {"start": time.perf_counter(), "status": None, "http_ms": None, "error": repr(exc)}

    async def send_all(self, phase: str, count: int, interval: float) -> list[str]:
        loop = asyncio.get_running_loop()
        tags = [f"rtbench~{phase}~{i}~" for i in range(count)]
        started = loop.time()
        futures = []
        for i, tag in enumerate(tags):
            delay = started + i * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            futures.append(loop.run_in_executor(self.pool, self._send, tag))
        await asyncio.gather(*futures)
        return tags


async def wait_for_arrivals(
    arrivals: Arrivals, tags: list[str], expected: set[int], timeout: float, quiet: float = 0.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(len(arrivals.at.get(tag, {}).keys() & expected) == len(expected) for tag in tags):
            break
        await asyncio.sleep(0.05)
    if quiet:
        await asyncio.sleep(quiet)  # let duplicates, if any, show up


def delivery_report(
    arrivals: Arrivals, sender: Sender, tags: list[str], expected: set[int], clients: dict[int, Client]
) -> dict[str, Any]:
    latencies: list[float] = []
    per_message = []
    lost = 0
    missing_by_user: Counter[str] = Counter()
    for tag in tags:
        sent = sender.sent.get(tag, {})
        got = arrivals.at.get(tag, {})
        if sent.get("error"):
            per_message.append({"tag": tag, "error": sent["error"]})
            lost += len(expected)
            continue
        start = sent["start"]
        times = [(got[i] - start) * 1000 for i in expected if i in got]
        for i in expected - got.keys():
            missing_by_user[clients[i].user_id] += 1
        lost += len(expected) - len(times)
        latencies += times
        per_message.append(
            {
                "tag": tag,
                "http_ms": round(sent["http_ms"], 1),
                "first_ms": round(min(times), 1) if times else None,
                "last_ms": round(max(times), 1) if times else None,
                "received": len(times),
            }
        )
    spreads = [m["last_ms"] - m["first_ms"] for m in per_message if m.get("first_ms") is not None]
    return {
        "messages": len(tags),
        "receivers": len(expected),
        "pairs": len(tags) * len(expected),
        "received": len(latencies),
        "lost": lost,
        "duplicates": arrivals.duplicates,
        "http_errors": sum(1 for m in per_message if "error" in m),
        "latency_ms": stats(latencies),
        "http_response_ms": stats([m["http_ms"] for m in per_message if m.get("http_ms") is not None]),
        "first_arrival_ms": stats([m["first_ms"] for m in per_message if m.get("first_ms") is not None]),
        "first_to_last_arrival_ms": stats(spreads),
        "missing_examples": dict(missing_by_user.most_common(5)),
        "per_message": per_message,
    }


async def wait_for_fds(pid: int, at_most: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and open_fds(pid) > at_most:
        await asyncio.sleep(0.25)
    return open_fds(pid)


def make_clients(
    host: str,
    port: int,
    path: str,
    users: list[str],
    count: int,
    arrivals: Arrivals,
    settings: Settings,
    *,
    deflate: bool = False,
) -> list[Client]:
    tokens = {u: issue_token(settings, u) for u in users}
    return [
        Client(
            index=i,
            host=host,
            port=port,
            path=path,
            token=tokens[users[i % len(users)]],
            on_event=arrivals.on_event,
            user_id=users[i % len(users)],
            deflate=deflate,
        )
        for i in range(count)
    ]


def diagnosis(
    args: argparse.Namespace, failed: list[tuple[int, str]], connected: int, server_sockets: int
) -> str | None:
    """A plain reading of failed connects, for the report."""
    if not failed:
        return None
    timeouts = sum(1 for _, reason in failed if reason.startswith("no connect"))
    if timeouts < len(failed):
        return None
    text_ = (
        f"the realtime process stopped completing handshakes after {connected:,} connections "
        f"(it holds ~{server_sockets:,} more descriptors than idle); later clients time out in the accept queue"
    )
    return text_


async def connections_phase(
    args: argparse.Namespace,
    settings: Settings,
    stack: Stack,
    api: str,
    conversation_id: str,
    students: list[str],
    rt_pid: int,
) -> dict[str, Any]:
    host, port, path = "127.0.0.1", settings.realtime_port, settings.socketio_path
    teacher_token = issue_token(settings, TEACHER)
    # Warm up once (lazy imports, first allocations), so the baseline is the process ready to serve.
    warm_arrivals = Arrivals(TAG)
    warm = await connect_many(
        make_clients(host, port, path, students, 20, warm_arrivals, settings),
        concurrency=20,
        timeout=10,
        give_up_after_failures=1,
    )
    if warm.failed:
        raise RuntimeError(f"warm-up connections failed: {warm.failed[:3]}")
    for c in warm.connected:
        c.close()
    fds_idle = await wait_for_fds(rt_pid, open_fds(rt_pid) - 20, 10)
    await asyncio.sleep(1.0)

    arrivals = Arrivals(TAG)
    clients = make_clients(host, port, path, students, args.clients, arrivals, settings, deflate=args.deflate)
    rss = {"before": rss_kb(rt_pid)}
    meter = Meter(stack)
    result = await connect_many(
        clients,
        concurrency=args.concurrency,
        timeout=args.connect_timeout,
        give_up_after_failures=args.concurrency,
    )
    connect_cpu = meter.read()
    await asyncio.sleep(1.0)
    rss["after_connect"] = rss_kb(rt_pid)
    fds_connected = open_fds(rt_pid)
    connected = len(result.connected)
    print(
        f"connections: {connected} of {args.clients} in {result.seconds:.1f}s; "
        f"realtime RSS {rss['before'] / 1024:.1f} -> {rss['after_connect'] / 1024:.1f} MiB",
        flush=True,
    )
    if result.failed:
        print(f"  {len(result.failed)} failed, e.g. {result.failed[0]}; gave up at #{result.gave_up_at}", flush=True)

    # Hold across a whole Engine.IO ping interval: every client must answer the server's pings.
    hold_meter = Meter(stack)
    hold_started = time.monotonic()
    samples = []
    while time.monotonic() - hold_started < args.hold:
        await asyncio.sleep(min(5.0, args.hold))
        samples.append(
            {
                "t_s": round(time.monotonic() - hold_started, 1),
                "alive": sum(1 for c in result.connected if c.alive),
                "rss_kb": rss_kb(rt_pid),
            }
        )
    hold_cpu = hold_meter.read()
    rss["after_hold"] = rss_kb(rt_pid)
    pinged = sum(1 for c in result.connected if c.pings > 0)
    pinged_twice = sum(1 for c in result.connected if c.pings > 1)
    alive_before_probe = [c for c in result.connected if c.alive]

    # Everyone still connected must receive the teacher's messages to the course.
    sender = Sender(api, conversation_id, teacher_token)
    probe_meter = Meter(stack)
    tags = await sender.send_all("conn", args.probe_messages, args.probe_interval)
    expected = {c.index for c in alive_before_probe}
    await wait_for_arrivals(arrivals, tags, expected, timeout=30, quiet=1.0)
    probe_cpu = probe_meter.read()
    delivery = delivery_report(arrivals, sender, tags, expected, {c.index: c for c in clients})
    sender.pool.shutdown()
    rss["after_delivery"] = rss_kb(rt_pid)
    alive_after = sum(1 for c in result.connected if c.alive)
    closed_reasons = Counter(c.close_reason for c in result.connected if not c.alive)

    for c in clients:
        c.close()
    fds_after_close = await wait_for_fds(rt_pid, fds_idle + 5, 30)
    await asyncio.sleep(1.0)
    rss["after_close"] = rss_kb(rt_pid)

    failure_reasons = Counter(reason for _, reason in result.failed)
    per_conn = (rss["after_connect"] - rss["before"]) / connected if connected else None
    per_conn_loaded = (rss["after_delivery"] - rss["before"]) / connected if connected else None
    return {
        "target": args.clients,
        "users": len(students),
        "connections_per_user": math.ceil(args.clients / len(students)),
        "connected": connected,
        "failed": len(result.failed),
        "failure_reasons": dict(failure_reasons.most_common(5)),
        "gave_up_at_index": result.gave_up_at,
        "connect_seconds": round(result.last_connected_s, 2),
        "connect_rate_per_s": round(connected / result.last_connected_s, 1) if result.last_connected_s else None,
        "attempt_seconds_with_timeouts": round(result.seconds, 2),
        "concurrency": args.concurrency,
        "diagnosis": diagnosis(args, result.failed, connected, fds_connected - fds_idle),
        "realtime_rss_kb": rss,
        "kb_per_connection": round(per_conn, 1) if per_conn is not None else None,
        "kb_per_connection_after_delivery": round(per_conn_loaded, 1) if per_conn_loaded is not None else None,
        "kb_per_connection_target": TARGET_KB_PER_CONNECTION,
        "realtime_open_fds": {"idle": fds_idle, "connected": fds_connected, "after_close": fds_after_close},
        "hold_seconds": args.hold,
        "hold_samples": samples,
        "clients_pinged_by_server": pinged,
        "clients_pinged_twice": pinged_twice,
        "alive_after_hold": len(alive_before_probe),
        "alive_after_delivery": alive_after,
        "closed_reasons": dict(closed_reasons.most_common(5)),
        "delivery": delivery,
        "cpu": {"connect": connect_cpu, "hold": hold_cpu, "delivery": probe_cpu},
    }


async def fanout_phase(
    args: argparse.Namespace,
    settings: Settings,
    stack: Stack,
    api: str,
    conversation_id: str,
    students: list[str],
    rt_pid: int,
) -> dict[str, Any]:
    host, port, path = "127.0.0.1", settings.realtime_port, settings.socketio_path
    members = [TEACHER, *students]
    arrivals = Arrivals(TAG)
    clients = make_clients(host, port, path, members, len(members), arrivals, settings)
    result = await connect_many(
        clients, concurrency=args.concurrency, timeout=args.connect_timeout, give_up_after_failures=args.concurrency
    )
    print(f"fan-out: {len(result.connected)} of {len(members)} members connected in {result.seconds:.1f}s", flush=True)
    await asyncio.sleep(1.0)
    sender = Sender(api, conversation_id, issue_token(settings, TEACHER))
    # One unmeasured message first: the first send of a run pays for cold caches along the path.
    warm = await sender.send_all("fanwarm", 1, 0)
    await wait_for_arrivals(arrivals, warm, {c.index for c in result.connected}, timeout=15)
    await asyncio.sleep(1.0)
    meter = Meter(stack)
    rss_before = rss_kb(rt_pid)
    tags = await sender.send_all("fan", args.messages, args.interval)
    # Every member must get every message: expected is all members, connected or not.
    expected = {c.index for c in clients}
    await wait_for_arrivals(arrivals, tags, expected, timeout=15, quiet=1.0)
    cpu = meter.read()
    report = delivery_report(arrivals, sender, tags, expected, {c.index: c for c in clients})
    sender.pool.shutdown()
    for c in clients:
        c.close()
    realtime_cpu = sum(v for k, v in cpu["stack_cpu_s"].items() if k.startswith("realtime"))
    return {
        "course_members": len(members),
        "realtime_cpu_ms_per_message": round(1000 * realtime_cpu / len(tags), 1) if tags else None,
        "realtime_cpu_us_per_recipient": round(1e6 * realtime_cpu / (len(tags) * len(members)), 1) if tags else None,
        "connected": len(result.connected),
        "connect_failed": len(result.failed),
        "connect_seconds": round(result.seconds, 2),
        "interval_s": args.interval,
        "target_p99_ms": TARGET_FANOUT_P99_MS,
        **report,
        "realtime_rss_kb": {"before": rss_before, "after": rss_kb(rt_pid)},
        "cpu": cpu,
    }


async def run_phases(
    args: argparse.Namespace, settings: Settings, stack: Stack, api: str, conversation_id: str, students: list[str]
) -> dict[str, Any]:
    rt_pid = next(p.pid for name, p in stack.processes.items() if name.startswith("realtime"))
    started_cpu, started_wall = time.process_time(), time.perf_counter()
    out: dict[str, Any] = {"realtime_pid": rt_pid, "realtime_rss_kb_idle": rss_kb(rt_pid)}
    if args.clients:
        out["connections"] = await connections_phase(args, settings, stack, api, conversation_id, students, rt_pid)
        await asyncio.sleep(2.0)
    if args.messages:
        out["fanout"] = await fanout_phase(args, settings, stack, api, conversation_id, students, rt_pid)
    wall = time.perf_counter() - started_wall
    cpu = time.process_time() - started_cpu
    out["checks"] = checks(args, out)
    out["generator"] = {
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "share_of_one_core": round(cpu / wall, 3),
        "share_of_machine": round(cpu / (wall * (os.cpu_count() or 1)), 3),
    }
    return out


def checks(args: argparse.Namespace, out: dict[str, Any]) -> dict[str, bool]:
    """The targets, each true or false."""
    result: dict[str, bool] = {}
    c = out.get("connections")
    if c:
        result["all_clients_connected"] = c["connected"] == args.clients
        result["all_alive_after_hold_and_delivery"] = c["alive_after_delivery"] == c["connected"] > 0
        if args.hold > 2 * PING_INTERVAL:
            result["every_client_pinged_twice"] = c["clients_pinged_twice"] == c["connected"] > 0
        result["every_client_received_every_message"] = c["delivery"]["lost"] == 0 and c["delivery"]["received"] > 0
        result["kb_per_connection_within_target"] = (c["kb_per_connection"] or 1e9) <= TARGET_KB_PER_CONNECTION
    f = out.get("fanout")
    if f:
        result["fanout_nothing_lost"] = f["lost"] == 0 and f["http_errors"] == 0
        result["fanout_p99_within_target"] = (f["latency_ms"]["p99"] or 1e9) <= TARGET_FANOUT_P99_MS
    return result


# --- the run ----------------------------------------------------------------------------------


def _core_share(meter: dict[str, Any]) -> str:
    realtime = sum(v for k, v in meter["stack_cpu_s"].items() if k.startswith("realtime"))
    return f"{realtime / meter['wall_s']:.0%}" if meter["wall_s"] else "?"


def summary(report: dict[str, Any]) -> str:
    lines = [f"Realtime benchmark, {report['cores']} cores, one realtime process ({report['realtime_mode']})"]
    c = report.get("connections")
    if c:
        rss = c["realtime_rss_kb"]
        d = c["delivery"]
        lines += [
            f"Connections: {c['connected']:,} of {c['target']:,} connected in {c['connect_seconds']} s "
            f"({c['connect_rate_per_s']}/s, {c['concurrency']} handshakes in flight)"
            + (f"; {c['failed']} failed: {c['failure_reasons']}" if c["failed"] else ""),
            *([f"  diagnosis: {c['diagnosis']}"] if c.get("diagnosis") else []),
            f"  realtime RSS {rss['before'] / 1024:.1f} MiB -> {rss['after_connect'] / 1024:.1f} MiB connected, "
            f"{rss['after_delivery'] / 1024:.1f} MiB after delivery, {rss['after_close'] / 1024:.1f} MiB after close",
            f"  memory per connection: {c['kb_per_connection']} KB ({c['kb_per_connection_after_delivery']} KB "
            f"after delivery; target <= {c['kb_per_connection_target']} KB)",
            f"  after {c['hold_seconds']} s: {c['alive_after_hold']:,} alive, {c['clients_pinged_by_server']:,} "
            f"pinged by the server, {c['clients_pinged_twice']:,} twice (their pong was taken); "
            f"after delivery {c['alive_after_delivery']:,} alive",
            f"  realtime process CPU: {_core_share(c['cpu']['connect'])} of a core while connecting, "
            f"{_core_share(c['cpu']['hold'])} while the clients sat idle (Engine.IO pings); "
            f"load generator {c['cpu']['connect']['generator_share_of_one_core']:.0%} while connecting",
            f"  {d['messages']} messages to {d['receivers']:,} sockets: {d['received']:,} of {d['pairs']:,} delivered "
            f"({d['lost']} lost, {d['duplicates']} duplicates); latency p50 {d['latency_ms']['p50']} ms, "
            f"p99 {d['latency_ms']['p99']} ms, max {d['latency_ms']['max']} ms",
        ]
    f = report.get("fanout")
    if f:
        lat = f["latency_ms"]
        lines += [
            f"Fan-out: {f['messages']} messages x {f['course_members']:,} members ({f['connected']:,} connected), "
            f"{f['interval_s']} s apart: {f['received']:,} of {f['pairs']:,} delivered ({f['lost']} lost, "
            f"{f['duplicates']} duplicates, {f['http_errors']} HTTP errors)",
            f"  HTTP start -> arrival at each member: p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms, "
            f"max {lat['max']} ms (target p99 <= {f['target_p99_ms']} ms)",
            f"  per message: HTTP response p50 {f['http_response_ms']['p50']} ms; first arrival p50 "
            f"{f['first_arrival_ms']['p50']} ms; first-to-last arrival p50 {f['first_to_last_arrival_ms']['p50']} ms, "
            f"max {f['first_to_last_arrival_ms']['max']} ms",
            f"  CPU seconds over the {f['cpu']['wall_s']} s: {f['cpu']['stack_cpu_s']}, {f['cpu']['server_cpu_s']}, "
            f"load generator {f['cpu']['generator_cpu_s']} ({f['cpu']['generator_share_of_one_core']:.0%} of a core), "
            f"other processes {f['cpu']['other_processes_cpu_s']}, interrupts {f['cpu']['interrupts_cpu_s']}; "
            f"machine busy {f['cpu']['machine_busy_share']:.0%}",
            f"  realtime CPU per message: {f['realtime_cpu_ms_per_message']} ms "
            f"({f['realtime_cpu_us_per_recipient']} us per recipient)",
        ]
    g = report.get("generator")
    if g:
        lines.append(
            f"Load generator: {g['cpu_s']} s CPU over {g['wall_s']} s = {g['share_of_one_core']:.1%} of one core "
            f"({g['share_of_machine']:.1%} of the machine)"
        )
    meters = [("connecting", (c or {}).get("cpu", {}).get("connect")), ("fan-out", (f or {}).get("cpu"))]
    for phase, meter in meters:
        if meter and meter["other_processes_share_of_machine"] > 0.1:
            lines.append(
                f"WARNING: during {phase}, {meter['other_processes_share_of_machine']:.0%} of the machine went to "
                "processes "
                "outside this benchmark (another workload?): its figures are pessimistic"
            )
    failed = [name for name, ok in report.get("checks", {}).items() if not ok]
    lines.append("Checks: " + ("all passed" if not failed else "FAILED " + ", ".join(failed)))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.realtime", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=5000, help="concurrent Socket.IO clients (0: skip)")
    parser.add_argument("--course-size", type=int, default=1000, help="students in the bench course")
    parser.add_argument("--messages", type=int, default=30, help="fan-out messages (0: skip)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between fan-out messages")
    parser.add_argument(
        "--hold",
        type=float,
        default=2 * PING_INTERVAL + 5,
        help="seconds to hold the clients; over two ping intervals, a second ping shows the first pong was taken",
    )
    parser.add_argument("--probe-messages", type=int, default=3, help="messages to every held client")
    parser.add_argument("--probe-interval", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=64, help="connection handshakes in flight")
    parser.add_argument("--connect-timeout", type=float, default=10.0)
    parser.add_argument(
        "--deflate", action="store_true", help="clients offer permessage-deflate, as every browser does"
    )
    args = parser.parse_args()
    if args.course_size < 1:
        parser.error("--course-size must be at least 1")

    fd_limit = raise_fd_limit()
    needed = args.clients + args.course_size + 200
    if fd_limit < needed:
        print(f"warning: RLIMIT_NOFILE is {fd_limit}, below the ~{needed} descriptors this run needs", flush=True)

    settings = bench_settings("rtbench")
    gateway_port, realtime_port = settings.gateway_port, settings.realtime_port
    log_dir = Path(tempfile.mkdtemp(prefix="rtbench-logs-"))
    began = time.monotonic()
    for name in DEFINITIONS:
        drop_database(settings.database_url(name))
    setup(settings)
    from services.directory.handlers import import_roster

    counts = import_roster(settings.database_url("directory"), bench_roster_delta(args.course_size))
    print(f"bench roster delta: {counts}", flush=True)
    students = [BENCH_USER.format(i) for i in range(1, args.course_size + 1)]
    stack = Stack(settings)
    api = f"http://127.0.0.1:{gateway_port}/api/v1"
    report: dict[str, Any] = {}
    ok = False
    try:
        stack.start(realtime_ports=[realtime_port], log_dir=log_dir)
        stack.wait_ready([f"http://127.0.0.1:{gateway_port}/readyz", f"http://127.0.0.1:{realtime_port}/readyz"])
        status, created, _ = post(
            api,
            "/conversations",
            issue_token(settings, TEACHER),
            {"recipients": [{"type": "course", "id": BENCH_CLASS}], "mode": "group", "body": "Realtime bench start"},
        )
        if status != 201:
            raise RuntimeError(f"could not start the course conversation: {status} {created}")
        conversation_id = created["conversation"]["id"]
        settled = wait_until_quiet(settings)
        print(f"stack ready in {time.monotonic() - began:.0f}s (queues quiet after {settled}s more)", flush=True)

        phases = asyncio.run(run_phases(args, settings, stack, api, conversation_id, students))
        report = {
            "benchmark": "realtime_connections_and_fanout",
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "cores": os.cpu_count(),
            "python": sys.version.split()[0],
            "realtime_mode": settings.realtime_async_mode,
            "fd_limit": fd_limit,
            "options": vars(args),
            "stack_processes": sorted(stack.processes),
            **phases,
            "run_seconds": round(time.monotonic() - began, 1),
        }
        ok = True
    finally:
        stack.stop()
        if not ok:
            for name in stack.processes:
                log = log_dir / f"{name}.log"
                if log.exists() and log.stat().st_size:
                    print(f"--- {name} log (tail) ---\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)
        delete_topology(settings)
        for name in DEFINITIONS:
            drop_database(settings.database_url(name))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"realtime-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2))
    print(summary(report))
    print(f"written to {out} (process logs in {log_dir})")


if __name__ == "__main__":
    main()
