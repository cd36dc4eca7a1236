"""Mass messaging (F27): how long a job takes to reach everyone, and what it does to ordinary messages.

Targets, on a 2-core machine: a 10,000-recipient job fully delivered (stored, and its events
out) in ≤ 10 s, a 50,000-recipient job in ≤ 60 s, and ordinary 1:1 messages sent during the
job keeping p99 ≤ 100 ms.

Starts the system as bench.latency does (own namespace and databases, `--workers` Celery
workers of `--threads` threads, chunks of `--chunk` recipients) and seeds the directory in
bulk SQL: 50,000 students in a new school `org-bench` under `org-district`, the first 10,000
of them also in a second school `org-bench-10k`; `user-a-000` (the district administrator)
gets the `mass_messaging` privilege. Then, as `user-a-000`, to the students only:

- job A: `org-bench-10k`, exactly 10,000 recipients;
- job B: `org-bench`, exactly 50,000 recipients, with 1:1 teacher→student messages at
  `--rate` msg/s (bench.latency's open-loop phase) from the moment it is posted.

For each job, from the start of its POST: (1) when GET /mass-messages/{id} first says
`completed` (every chunk stored by conversations and recorded), and (2) when its events are
out: the conversations outbox holds no row for the job's conversation and the sync change log
holds one `conversations.conversation.created` change per chunk for it (counted exactly through
`change_messages`: the change's `last_message.id` is the job's id). Also the server's own
timestamps (job created, planned, finished; each chunk's change logged), the chunk timeline
as polled (every 0.2 s: the GET and three small queries, counted in the gateway's,
mass_messaging's and the bench's CPU), and CPU seconds per process over the job (job B's
include the 1:1 traffic). `postgres` and `rabbitmq` are every such process on the machine
(other systems' too, and without backends that exited), so on a shared machine read them
with `other_cpu_s`. For the 1:1 messages: latency split into those sent while job B ran and
after, and each message's stages by the databases' clocks, beside a baseline with no job.

`--per-second` overrides MASS_RECIPIENTS_PER_SECOND (the pace a job's chunks are spread to);
a huge value shows what the machine can do unpaced. The run's databases are its own and are
dropped at the end. Figures go to bench/results/mass-<time>.json and to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy import text

from bench.latency import Receivers, open_pairs, run_phase
from bench.measure import Meter, bench_settings, process_table, stats, tree_cpu, write_report
from deploy.local import DEFINITIONS, Stack, delete_topology, setup
from shared.auth import issue_token
from shared.config import Settings
from shared.db import drop_database, transaction

SENDER = "user-a-000"  # the district administrator: governs org-district and everything under it
BIG_ORG, SMALL_ORG = "org-bench", "org-bench-10k"
CREATED = "conversations.conversation.created"
TARGETS_S = {"A": 10.0, "B": 60.0}
TARGET_P99_MS = 100.0


def seed(settings: Settings, students: int, small: int) -> None:
    """`students` students in org-bench, the first `small` also in org-bench-10k; the privilege for the sender."""
    with transaction(settings.database_url("directory")) as session:
        session.execute(
            text(
                "INSERT INTO orgs (sourced_id, name, type, parent_id) VALUES "
                "(:big, 'Bench High School', 'school', 'org-district'), "
                "(:small, 'Bench Annex', 'school', 'org-district')"
            ),
            {"big": BIG_ORG, "small": SMALL_ORG},
        )
        session.execute(
            text(
                """
                INSERT INTO users (sourced_id, given_name, family_name, roster_role, role, username, email,
                                   title, enabled, org_ids)
                SELECT 'bench-s-' || lpad(i::text, 6, '0'), 'Bench', 'Student ' || i, 'student', 'student',
                       'bench.s' || i, 'bench.s' || i || '@example.org', '', true,
                       CASE WHEN i < :small THEN ARRAY[:big, :small_org] ELSE ARRAY[:big] END
                FROM generate_series(0, :n - 1) AS i
                """
            ),
            {"n": students, "small": small, "big": BIG_ORG, "small_org": SMALL_ORG},
        )
        session.execute(
            text(
                "INSERT INTO privileges (user_id, privilege, granted_by) VALUES (:u, 'mass_messaging', :u) "
                "ON CONFLICT DO NOTHING"
            ),
            {"u": SENDER},
        )
        session.execute(text("ANALYZE users"))


class Watch(threading.Thread):
    """Polls one job every `every` seconds: its HTTP view, its row, its conversation's outbox rows and changes."""

    def __init__(self, settings: Settings, api: str, token: str, job_id: str, started: float, every: float = 0.2):
        super().__init__(daemon=True)
        self.settings, self.token, self.job_id, self.started, self.every = settings, token, job_id, started, every
        split = urlsplit(api)
        self.host, self.port, self.path = split.hostname, split.port, split.path
        self.completed_s: float | None = None
        self.events_out_s: float | None = None
        self.view: dict[str, Any] = {}
        self.timeline: list[dict[str, Any]] = []
        self.error: str | None = None
        self.done = threading.Event()
        self._halt = threading.Event()

    def get(self) -> dict[str, Any]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(
                "GET", f"{self.path}/mass-messages/{self.job_id}", headers={"Authorization": f"Bearer {self.token}"}
            )
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status != 200:
            raise RuntimeError(f"GET job: {response.status} {body[:200]!r}")
        return json.loads(body)

    def sample(self) -> None:
        view = self.get()
        now = time.perf_counter() - self.started
        self.view = view
        with transaction(self.settings.database_url("mass_messaging")) as session:
            row = session.execute(
                text("SELECT state, chunks, chunks_done, conversation_id FROM jobs WHERE id = :id"),
                {"id": self.job_id},
            ).one()
        cid = row.conversation_id
        outbox_total, outbox_job = 0, 0
        with transaction(self.settings.database_url("conversations")) as session:
            found = session.execute(
                text("SELECT count(*) AS total, count(*) FILTER (WHERE envelope LIKE :pattern) AS job FROM outbox"),
                {"pattern": f"%{cid}%" if cid else "-"},
            ).one()
            outbox_total, outbox_job = found.total, found.job
        with transaction(self.settings.database_url("sync")) as session:
            changes = session.execute(
                text(
                    "SELECT count(*) FROM change_messages m JOIN changes c ON c.seq = m.seq "
                    "WHERE m.message_id = :job AND c.type = :type"
                ),
                {"job": self.job_id, "type": CREATED},
            ).scalar_one()
        point = {
            "t_s": round(now, 2),
            "state": row.state,
            "chunks_done": row.chunks_done,
            "changes_logged": changes,
            "outbox_rows_of_job": outbox_job,
            "outbox_rows_all": outbox_total,
        }
        last = self.timeline[-1] if self.timeline else None
        if last is None or any(last[k] != point[k] for k in point if k != "t_s"):
            self.timeline.append(point)
        if view["state"] == "completed" and self.completed_s is None:
            self.completed_s = now
        if view["state"] in ("failed", "cancelled"):
            self.done.set()
        if self.completed_s is not None and row.chunks is not None and not outbox_job and changes >= row.chunks:
            self.events_out_s = now
            self.done.set()

    def run(self) -> None:
        while not self._halt.is_set() and not self.done.is_set():
            try:
                self.sample()
            except Exception as exc:  # noqa: BLE001  (reported with the job, never hidden)
                self.error = repr(exc)
                self.done.set()
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()


def server_times(settings: Settings, job_id: str) -> dict[str, Any]:
    """The job as the databases timed it: created, planned, finished; the first message stored; each change logged."""
    with transaction(settings.database_url("mass_messaging")) as session:
        job = session.execute(
            text("SELECT created_at, started_at, finished_at, chunks FROM jobs WHERE id = :id"), {"id": job_id}
        ).one()
    with transaction(settings.database_url("conversations")) as session:
        stored = session.execute(text("SELECT created_at FROM messages WHERE id = :id"), {"id": job_id}).scalar()
    with transaction(settings.database_url("sync")) as session:
        logged = session.execute(
            text(
                "SELECT c.logged_at FROM change_messages m JOIN changes c ON c.seq = m.seq "
                "WHERE m.message_id = :job AND c.type = :type ORDER BY c.seq"
            ),
            {"job": job_id, "type": CREATED},
        ).scalars()
        logged = list(logged)

    def since(at: datetime | None) -> float | None:
        return round((at - job.created_at).total_seconds(), 3) if at is not None else None

    started, finished = since(job.started_at), since(job.finished_at)
    gaps = [round((b - a).total_seconds() * 1000) for a, b in zip(logged, logged[1:], strict=False)]
    return {
        "chunks": job.chunks,
        "planned_s": started,  # POST handled → task picked up → audience read (pages) → chunks saved
        "first_chunk_stored_s": since(stored),
        "finished_s": finished,
        "delivery_ms_per_chunk": round((finished - started) * 1000 / job.chunks, 1)
        if started is not None and finished is not None and job.chunks
        else None,
        "first_change_logged_s": since(logged[0]) if logged else None,
        "last_change_logged_s": since(logged[-1]) if logged else None,
        "ms_between_changes_logged": {
            "min": min(gaps) if gaps else None,
            "median": sorted(gaps)[len(gaps) // 2] if gaps else None,
            "max": max(gaps) if gaps else None,
        },
    }


def settle(stack: Stack, settings: Settings, quiet: float = 0.1, timeout: float = 180.0) -> float:
    """Wait until the system is idle: the demo roster's import leaves ~25 s of directory events for
    conversations to follow after start (both processes busy), which would land on the first job.
    Idle means no directory outbox rows and the system's processes using < `quiet` of a core."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        before = process_table()
        time.sleep(1.0)
        after = process_table()
        busy = sum(tree_cpu(after, p.pid) - tree_cpu(before, p.pid) for p in stack.processes.values())
        with transaction(settings.database_url("directory")) as session:
            waiting = session.execute(text("SELECT count(*) FROM outbox")).scalar_one()
        if busy < quiet and not waiting:
            break
    return round(time.perf_counter() - started, 1)


def post_job(api: str, token: str, org: str) -> tuple[dict[str, Any], float, float]:
    started = time.perf_counter()
    response = requests.post(
        f"{api}/mass-messages",
        json={"org_id": org, "org_ids": [org], "roles": ["student"], "body": f"Bench mass message to {org}."},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    if response.status_code != 202:
        raise RuntimeError(f"POST mass-messages: {response.status_code} {response.text}")
    return response.json(), started, (time.perf_counter() - started) * 1000


def run_job(
    settings: Settings,
    stack: Stack,
    api: str,
    token: str,
    org: str,
    audience: int,
    timeout: float,
    during: Any = None,
) -> dict[str, Any]:
    """Post a job to `org`'s students, watch it until its events are out; `during()` runs in between."""
    meter = Meter(stack)
    job, started, post_ms = post_job(api, token, org)
    if job["audience"] != audience:
        raise RuntimeError(f"{org}: audience {job['audience']}, expected {audience}")
    watch = Watch(settings, api, token, job["id"], started)
    watch.start()
    traffic = during(started) if during is not None else None
    watch.done.wait(max(0.0, timeout - (time.perf_counter() - started)))
    watch.stop()
    watch.join(10)
    used = meter.read()
    view = watch.view
    server = server_times(settings, job["id"])
    chunks = server["chunks"] or 0
    cpu = {**used["stack_cpu_s"], **used["server_cpu_s"], "bench": used["generator_cpu_s"]}
    result: dict[str, Any] = {
        "org": org,
        "audience": job["audience"],
        "state": view.get("state"),
        "delivered": view.get("delivered"),
        "skipped": view.get("skipped"),
        "failed": view.get("failed"),
        "chunk_size": settings.mass_chunk_size,
        "chunks": chunks,
        "post_ms": round(post_ms, 1),
        "completed_s": round(watch.completed_s, 2) if watch.completed_s is not None else None,
        "events_out_s": round(watch.events_out_s, 2) if watch.events_out_s is not None else None,
        "server": server,
        "cpu_s": dict(sorted(cpu.items(), key=lambda kv: -kv[1])),
        "cpu_ms_per_chunk": {name: round(s * 1000 / chunks, 1) for name, s in cpu.items() if s >= 0.05}
        if chunks
        else None,
        "machine_busy_share": used["machine_busy_share"],
        # CPU of processes that are not this system's (other work on a shared machine).
        "other_processes_cpu_s": used["other_processes_cpu_s"],
        "other_processes_share_of_machine": used["other_processes_share_of_machine"],
        # Everything the machine did besides this system and the bench (processes that came and went too).
        "other_cpu_s": used["other_cpu_s"],
        "wall_s": used["wall_s"],
        "timeline": watch.timeline,
    }
    if traffic is not None:
        result["during"] = traffic
    if watch.error:
        result["watch_error"] = watch.error
    return result


def split(
    settings: Settings,
    receivers: Receivers,
    phase: dict[str, Any],
    prefix: str,
    count: int,
    rate: float,
    start: float,
    cut: float,
) -> dict[str, Any]:
    """A run_phase's messages scheduled before `cut` (the job's events out) and after it: their
    latencies, and where each spent its time, by the databases' clocks.

    run_phase sends message i at its start + i / rate (open loop; on time at these rates) and
    keeps its exact start to itself: `start` is taken just before calling it, and corrected by
    the difference of mean latencies (the same messages, so the same shift), to within a
    fraction of a millisecond. The stages of a message: from its send to the start of the
    transaction that stores it (gateway, conversations' RPC queue and checks); from there to
    the start of the sync logger's transaction that logs it (store, commit, outbox relay,
    broker, the logger's queue); from there to its arrival on the socket (logging, republishing,
    realtime).
    """
    arrived: dict[int, float] = {}
    with receivers.lock:
        for i in range(count):
            at = receivers.arrived.get(f"{prefix}-{i}")
            if at is not None:
                arrived[i] = at
    if not arrived:
        return {}
    estimated = sum((at - start - i / rate) * 1000 for i, at in arrived.items()) / len(arrived)
    start += (estimated - phase["latency_ms"]["mean"]) / 1000
    to_wall = time.time() - time.perf_counter()
    tags = [f"{prefix}-{i}" for i in arrived]
    with transaction(settings.database_url("conversations")) as session:
        stored = {
            r.client_id: (str(r.id), r.created_at.timestamp())
            for r in session.execute(
                text("SELECT client_id, id, created_at FROM messages WHERE client_id = ANY(:tags)"), {"tags": tags}
            )
        }
    with transaction(settings.database_url("sync")) as session:
        logged = {
            r.message_id: r.logged_at.timestamp()
            for r in session.execute(
                text(
                    "SELECT m.message_id, c.logged_at FROM change_messages m JOIN changes c ON c.seq = m.seq "
                    "WHERE m.message_id = ANY(:ids) AND c.type = 'conversations.message.created'"
                ),
                {"ids": [mid for mid, _ in stored.values()]},
            )
        }
    groups: dict[str, dict[str, list[float]]] = {
        name: {"latency": [], "send_to_store": [], "store_to_log": [], "log_to_socket": []}
        for name in ("while_job_ran", "after_job")
    }
    for i, at in arrived.items():
        scheduled = start + i / rate
        group = groups["while_job_ran" if scheduled < cut else "after_job"]
        group["latency"].append((at - scheduled) * 1000)
        found = stored.get(f"{prefix}-{i}")
        if found is None or found[0] not in logged:
            continue
        sent, saved, log_at, got = scheduled + to_wall, found[1], logged[found[0]], at + to_wall
        group["send_to_store"].append((saved - sent) * 1000)
        group["store_to_log"].append((log_at - saved) * 1000)
        group["log_to_socket"].append((got - log_at) * 1000)
    return {
        name: {"messages": len(g["latency"]), **{f"{k}_ms": stats(v) for k, v in g.items()}}
        for name, g in groups.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.mass")
    defaults = Settings.from_env()
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes")
    parser.add_argument("--threads", type=int, default=2, help="threads of each worker")
    parser.add_argument("--chunk", type=int, default=defaults.mass_chunk_size, help="recipients a chunk")
    parser.add_argument(
        "--per-second",
        type=float,
        default=getattr(defaults, "mass_recipients_per_second", None),
        help="MASS_RECIPIENTS_PER_SECOND: the pace a job's chunks are spread to (a huge value: no pacing)",
    )
    parser.add_argument("--small", type=int, default=10_000, help="job A's audience")
    parser.add_argument("--big", type=int, default=50_000, help="job B's audience")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--rate", type=float, default=20, help="1:1 msg/s during job B")
    parser.add_argument("--during", type=float, default=None, help="seconds of 1:1 sends (default: job A × 5)")
    args = parser.parse_args()

    base = bench_settings("benchmass")
    settings = dataclasses.replace(
        base,
        # Databases of this run's own (two runs at once must not drop each other's); dropped at the end.
        db_prefix=f"{base.db_prefix}{base.gateway_port}",
        mass_workers=args.workers,
        mass_worker_threads=args.threads,
        mass_chunk_size=args.chunk,
        **({"mass_recipients_per_second": args.per_second} if args.per_second is not None else {}),
    )
    for name in DEFINITIONS:
        drop_database(settings.database_url(name))
    setup(settings)
    seed(settings, args.big, args.small)
    stack = Stack(settings).start(realtime_ports=[settings.realtime_port], log_dir=None)
    api = f"http://127.0.0.1:{settings.gateway_port}/api/v1"
    realtime = f"http://127.0.0.1:{settings.realtime_port}"
    receivers = Receivers()
    report: dict[str, Any] = {
        "benchmark": "mass_messaging",
        "cores": os.cpu_count(),
        "mass_workers": settings.mass_workers,
        "mass_worker_threads": settings.mass_worker_threads,
        "chunk_size": settings.mass_chunk_size,
        "recipients_per_second_pace": getattr(settings, "mass_recipients_per_second", None),
        "gateway_workers": settings.gateway_workers,
        "targets": {
            "job_a_s": TARGETS_S["A"],
            "job_b_s": TARGETS_S["B"],
            "p99_ms_during_job_b": TARGET_P99_MS,
        },
    }
    try:
        stack.wait_ready([f"http://127.0.0.1:{settings.gateway_port}/readyz", f"{realtime}/readyz"])
        token = issue_token(settings, SENDER)
        pairs = open_pairs(settings, api, realtime, receivers, args.pairs)
        report["settled_after_start_s"] = settle(stack, settings)
        run_phase(stack, api, pairs, receivers, 50, 200, "warmup")
        settle(stack, settings)
        base_count, base_start, meter = int(args.rate * 10), time.perf_counter(), Meter(stack)
        baseline = run_phase(stack, api, pairs, receivers, args.rate, base_count, "base")
        other = meter.read()
        baseline["other_processes_share_of_machine"] = other["other_processes_share_of_machine"]
        baseline["other_cpu_s"] = other["other_cpu_s"]
        # Where the time goes with no job, for comparison with the messages sent during job B.
        baseline["stages"] = split(
            settings, receivers, baseline, "base", base_count, args.rate, base_start, base_start
        ).get("after_job")
        report["baseline_no_job"] = baseline
        print(json.dumps({"baseline_no_job": report["baseline_no_job"]}))

        settle(stack, settings)
        a = run_job(settings, stack, api, token, SMALL_ORG, args.small, timeout=180)
        report["job_a"] = a
        print(json.dumps({k: v for k, v in a.items() if k != "timeline"}))

        # Job B is 5 times job A: send for about as long as it should last.
        seconds = args.during or min(90.0, max(10.0, 5 * (a["events_out_s"] or 30.0)))
        count = int(args.rate * seconds)
        phase: dict[str, float] = {}

        def traffic(posted: float) -> dict[str, Any]:
            phase["start"], phase["posted"] = time.perf_counter(), posted
            return run_phase(stack, api, pairs, receivers, args.rate, count, "duringB")

        b = run_job(settings, stack, api, token, BIG_ORG, args.big, timeout=400, during=traffic)
        b["during"]["started_after_post_s"] = round(phase["start"] - phase["posted"], 3)
        b["during"]["send_window_s"] = round(count / args.rate, 1)
        if b["events_out_s"] is not None:
            b["during"]["split_by_job"] = split(
                settings,
                receivers,
                b["during"],
                "duringB",
                count,
                args.rate,
                phase["start"],
                phase["posted"] + b["events_out_s"],
            )
        report["job_b"] = b
        print(json.dumps({k: v for k, v in b.items() if k != "timeline"}))
        p99 = b["during"]["latency_ms"]["p99"]
        report["met"] = {
            "job_a": a["events_out_s"] is not None and a["events_out_s"] <= TARGETS_S["A"],
            "job_b": b["events_out_s"] is not None and b["events_out_s"] <= TARGETS_S["B"],
            "p99_during_job_b": p99 <= TARGET_P99_MS and not b["during"]["lost"],
        }
    finally:
        receivers.close()
        stack.stop()
        delete_topology(settings)
        for name in DEFINITIONS:
            drop_database(settings.database_url(name))
    report["at"] = datetime.now(UTC).isoformat(timespec="seconds")
    out = write_report("mass", report)
    print(json.dumps(report["met"]))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
