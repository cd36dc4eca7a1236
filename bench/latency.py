"""Send→receive latency through the whole system: HTTP in, Socket.IO out.

Starts the system as `make run` does (own namespace and databases), connects 20 teacher /
student pairs, sends messages over HTTP at fixed rates (open loop: each send is scheduled,
so a slow system cannot slow the generator down and hide its own latency), and times each
message from the start of its HTTP request to its arrival on the recipient's socket.
Figures go to bench/results/latency-<time>.json and to stdout.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import socketio

from bench.measure import (
    Meter,
    bench_settings,
    database_counters,
    per_message,
    percentile,
    wait_until_settled,
    write_report,
)
from deploy.local import DEFINITIONS, Stack, delete_topology, setup
from shared.auth import issue_token
from shared.config import Settings
from shared.db import drop_database


class Receivers:
    """One Socket.IO connection per recipient, recording arrival times by message tag."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.lock = threading.Lock()
        self.clients: list[socketio.Client] = []

    def connect(self, url: str, token: str) -> None:
        client = socketio.Client(reconnection=False)

        def on_message(data: dict[str, Any]) -> None:
            now = time.perf_counter()
            tag = data["message"]["client_id"]
            with self.lock:
                self.arrived.setdefault(tag, now)

        client.on("message.created", on_message)
        client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
        self.clients.append(client)

    def close(self) -> None:
        for client in self.clients:
            client.disconnect()


def run_phase(
    stack: Stack, api: str, pairs: list[dict[str, Any]], receivers: Receivers, rate: float, count: int, phase: str
) -> dict[str, Any]:
    interval = 1.0 / rate
    sent_at: dict[str, float] = {}
    http_ms: list[float] = []
    errors = 0
    lock = threading.Lock()

    host, port = urlsplit(api).hostname, urlsplit(api).port
    path = urlsplit(api).path

    def send(i: int, scheduled: float) -> None:
        nonlocal errors
        pair = pairs[i % len(pairs)]
        tag = f"{phase}-{i}"
        body = json.dumps({"body": f"bench message {i}", "client_id": tag})
        headers = {"Authorization": f"Bearer {pair['token']}", "Content-Type": "application/json"}
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        start = time.perf_counter()
        with lock:
            sent_at[tag] = start
        try:
            # The standard library's client: `requests` costs the generator ~1.5 ms of CPU a call.
            conn = http.client.HTTPConnection(host, port, timeout=30)
            conn.request("POST", f"{path}/conversations/{pair['conversation_id']}/messages", body, headers)
            response = conn.getresponse()
            response.read()
            conn.close()
            with lock:
                http_ms.append((time.perf_counter() - start) * 1000)
            if response.status != 201:
                raise RuntimeError(response.status)
        except Exception:  # noqa: BLE001  (counted and reported, never hidden)
            with lock:
                errors += 1

    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    db_before = database_counters(stack.settings)
    meter = Meter(stack)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=64) as pool:
        for i in range(count):
            pool.submit(send, i, started + i * interval)
    send_done = time.perf_counter()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with receivers.lock:
            if all(tag in receivers.arrived for tag in sent_at):
                break
        time.sleep(0.05)
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    used = meter.read()
    db_after = database_counters(stack.settings)
    with receivers.lock:
        latencies = [(receivers.arrived[t] - s) * 1000 for t, s in sent_at.items() if t in receivers.arrived]
        last_arrival = max((receivers.arrived[t] for t in sent_at if t in receivers.arrived), default=send_done)
    elapsed = last_arrival - started
    generator_cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    return {
        "target_rate": rate,
        "messages": count,
        "received": len(latencies),
        "lost": count - len(latencies),
        "http_errors": errors,
        "achieved_rate": round(len(latencies) / elapsed, 1) if elapsed > 0 else None,
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 2),
            "p95": round(percentile(latencies, 95), 2),
            "p99": round(percentile(latencies, 99), 2),
            "max": round(max(latencies), 2) if latencies else None,
            "mean": round(statistics.fmean(latencies), 2) if latencies else None,
        },
        "http_response_ms": {
            "p50": round(percentile(http_ms, 50), 2),
            "p99": round(percentile(http_ms, 99), 2),
        },
        "load_generator_cpu_share": round(generator_cpu / (elapsed * (os.cpu_count() or 1)), 3) if elapsed else None,
        # Where the machine's time goes, per message sent: each process of the system, the database, the broker.
        "cpu_ms_per_message": {
            name: round(seconds * 1000 / count, 2)
            for name, seconds in {**used["stack_cpu_s"], **used["server_cpu_s"]}.items()
        },
        "machine_busy_share": used["machine_busy_share"],
        # What each message costs PostgreSQL: commits, and rows written and read, per service database.
        "database_per_message": per_message(db_before, db_after, count),
    }


def teacher_student_pairs(count: int) -> list[tuple[str, str]]:
    """Distinct teachers, each with a student of one of their own classes (so rules never refuse them)."""
    from services.directory.roster.generate import demo_roster_files, zip_files
    from services.directory.roster.parse import load_bundle

    bundle = load_bundle(zip_files(demo_roster_files()))
    by_class: dict[str, dict[str, list[str]]] = {}
    for e in bundle.enrollments:
        by_class.setdefault(e.class_id, {}).setdefault(e.platform_role, []).append(e.user_id)
    pairs: list[tuple[str, str]] = []
    used: set[str] = set()
    for members in by_class.values():
        teacher = next((t for t in members.get("teacher", []) if t not in used), None)
        student = next((s for s in members.get("student", []) if s not in used), None)
        if teacher and student:
            used.update((teacher, student))
            pairs.append((teacher, student))
    return pairs[:count]


def open_pairs(settings: Settings, api: str, realtime: str, receivers: Receivers, count: int) -> list[dict[str, Any]]:
    """A 1:1 conversation per teacher–student pair, the student listening: what run_phase sends into."""
    pairs = []
    for teacher, student in teacher_student_pairs(count):
        token = issue_token(settings, teacher)
        created = requests.post(
            f"{api}/conversations",
            json={"recipients": [{"type": "user", "id": student}], "body": "Bench start"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        if created.status_code != 201:
            raise RuntimeError(f"{teacher} -> {student}: {created.text}")
        pairs.append({"token": token, "conversation_id": created.json()["conversation"]["id"]})
        receivers.connect(realtime, issue_token(settings, student))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.latency")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument(
        "--rates", default="60,80,100,150,200", help="msg/s, rising; stops at the first it cannot sustain"
    )
    args = parser.parse_args()

    settings = bench_settings("bench")
    gateway_port, realtime_port = settings.gateway_port, settings.realtime_port
    for name in DEFINITIONS:
        drop_database(settings.database_url(name))
    setup(settings)
    stack = Stack(settings).start(realtime_ports=[realtime_port], log_dir=None)
    api = f"http://127.0.0.1:{gateway_port}/api/v1"
    receivers = Receivers()
    try:
        stack.wait_ready([f"http://127.0.0.1:{gateway_port}/readyz", f"http://127.0.0.1:{realtime_port}/readyz"])
        pairs = open_pairs(settings, api, f"http://127.0.0.1:{realtime_port}", receivers, args.pairs)
        run_phase(stack, api, pairs, receivers, 50, 200, "warmup")
        print(f"waited {wait_until_settled(stack)} s for the system to finish its own start-up work")
        phases = []
        for rate in [float(r) for r in args.rates.split(",")]:
            result = run_phase(stack, api, pairs, receivers, rate, args.messages, f"r{int(rate)}")
            phases.append(result)
            print(json.dumps(result))
            if result["lost"] or result["http_errors"] or (result["achieved_rate"] or 0) < 0.9 * rate:
                break
        sustained = [
            p
            for p in phases
            if not p["lost"] and not p["http_errors"] and (p["achieved_rate"] or 0) >= 0.9 * p["target_rate"]
        ]
        report = {
            "benchmark": "send_to_receive_latency",
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "cores": os.cpu_count(),
            "pairs": args.pairs,
            "gateway_workers": settings.gateway_workers,
            "gateway_threads": getattr(settings, "gateway_threads", 1),
            "phases": phases,
            "ceiling_msgs_per_s": max((p["achieved_rate"] for p in sustained), default=None),
        }
    finally:
        receivers.close()
        stack.stop()
        delete_topology(settings)
    out = write_report("latency", report)
    print(json.dumps(report, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
