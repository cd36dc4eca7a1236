"""The school day: how many concurrent users one deployment serves while staying healthy.

Starts the whole system as `make run` does (own namespace and databases), seeds a district of
~20,000 people in bulk (bench/district.py says what and why: the roster generator's people,
a timetable of classes of ~28, course conversations, teacher-student 1:1s, study and staff
groups, all with a little history), then simulates users in this one asyncio process:

- Login at the bell, 50 per second: GET /config, GET /me, GET /conversations, a Socket.IO
  connection of their own (bench/wsload.py) with their own dev token, GET /sync for a cursor.
- Then, every 15-45 s (uniform), one action: open a conversation (its messages page, then
  mark it read) 60 %, refresh the conversation list 15 %, send a message 12 % (students
  mostly into 1:1s and study groups, teachers mostly 1:1s and now and then their course
  conversation of ~30), search 5 %, mark a conversation unread 3 %, upload a small file and
  send it in a message 2 %. The district administrator sends one mass message to ~2,000
  people (a primary school's students and teachers) during the first step.

Every HTTP request's status and time is recorded (no answer within 10 s is a timeout, an
error), and every message is sent with a unique `client_id` and timed from the start of its
request until its `message.created` event arrives on each connected recipient's socket.

Steps: the number of concurrent users rises (default 1,000, 2,000, 5,000, 10,000). The users
of a step stay connected into the next, which logs in only the new ones (at 50/s) on the same
running system. Each step is judged by 60 s windows (from the start of its login burst), in
the manner of Mattermost's ceiling tests; a window is healthy when HTTP errors + timeouts are
under 0.1 %, the HTTP mean under 100 ms and p99 under 1 s, push p99 under 1 s, nothing lost
(every acknowledged message reached every recipient connected when it was sent), no socket
failed to connect or dropped, and the mass message, if it ran then, did not fail. A step is
healthy only if every one of its windows is; the run stops at the first unhealthy step and
reports the largest healthy one.

Figures per window: requests/s, messages/s, HTTP and push latency, errors by kind, CPU share
of a core and RSS per process of the system (PostgreSQL and RabbitMQ too), the machine's busy
share, other work on the machine, and the load generator's own CPU share (its budget: 5 % of a
core per 1,000 users; it is reported, never subtracted from the system's figures).
Results go to bench/results/schoolday-<UTC time>.json, a summary to stdout.

    python -m bench.schoolday                    # the full run (up to 25 minutes on 2 cores)
    python -m bench.schoolday --quick            # a smoke run: 300 then 600 users, 20 s windows
    python -m bench.schoolday --steps 1000,1250,1500 --windows-per-step 2

Reading it: stdout has one line per step (HEALTHY or UNHEALTHY, requests and messages per
second, HTTP mean and worst p99, worst push p99, errors, lost, the machine's busy share, the
busiest processes' share of a core, the generator's share per 1,000 users) and, for a step
that failed, one line per reason and window ("window 1 (login): HTTP p99 4397 ms >= 1000 ms
(slowest: me ...)"). The JSON holds every window in full: `http_ms_by_kind` (which call is
slow), `errors_by_kind` and `error_examples` (what the system answered), `push_ms`, `lost`,
`cpu_share_of_a_core` and `rss_mib` per process, `queued_messages_at_end` (where a backlog
builds), `other_processes_share_of_machine` (work that is not ours: above a few percent the
figures are pessimistic). Windows marked `login` hold a login burst; the generator's budget
is judged on the `steady` ones (a burst costs it five requests and a connect per user).
PostgreSQL's and RabbitMQ's CPU and RSS are those of every process of that name on the
machine, other databases' included.

The system's realtime process raises its own descriptor limit (to REALTIME_MAX_CONNECTIONS +
256, within the hard limit); this process raises its soft limit to the hard limit before it
starts the system, so every process of the system inherits it too.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import re
import resource
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.district import DISTRICT, PHRASES, Conversation, District, build, seed
from bench.httpload import Answer, Http
from bench.measure import (
    SERVERS,
    Meter,
    bench_settings,
    descendants,
    free_port,
    percentile,
    process_table,
    queue_depths,
    raise_fd_limit,
    rss_kb,
    write_report,
)
from bench.wsload import MESSAGE_CREATED, Arrivals, Client, ConnectRefused, connect
from deploy.local import DEFINITIONS, Stack, delete_topology, setup
from shared.auth import issue_token
from shared.config import Settings
from shared.db import drop_database

API = "/api/v1"

LOGINS_PER_SECOND = 50.0
THINK_SECONDS = (15.0, 45.0)
ACTIONS = {"open": 0.60, "refresh": 0.15, "send": 0.12, "search": 0.05, "unread": 0.03, "upload": 0.02}
# Which kind of conversation a send goes into, by role (what a school's traffic looks like).
SEND_MIX = {
    "student": {"direct": 0.35, "group": 0.50, "course": 0.15},
    "teacher": {"direct": 0.60, "course": 0.25, "group": 0.15},
    "admin": {"direct": 0.40, "group": 0.60},
}
SEARCH_WORDS = ("homework", "essay", "project", "test", "quiz", "trip", "notes", "library", "concert", "fractions")
UPLOAD = ("worksheet.txt", b"Worksheet: fractions\n" + b"1/2 + 1/4 = ?\n" * 150, "text/plain")

# Health, per window.
MAX_ERROR_RATE = 0.001
MAX_HTTP_MEAN_MS = 100.0
MAX_HTTP_P99_MS = 1000.0
MAX_PUSH_P99_MS = 1000.0
GENERATOR_BUDGET_PER_1000 = 0.05  # of one core
HTTP_TIMEOUT_S = 10.0
# A step is judged this long after its last window, so its last messages have time to arrive;
# a delivery still missing then is lost.
PUSH_GRACE_S = 15.0

TAG = re.compile(r"sdb-\d+-\d+")


# --- the simulated users -------------------------------------------------------------------------


@dataclass(eq=False)
class User:
    index: int
    id: str
    role: str
    token: str
    conversations: list[Conversation]
    by_type: dict[str, list[Conversation]]
    client: Client | None = None
    online: bool = False  # logged in with a live socket

    @property
    def alive(self) -> bool:
        return self.online and self.client is not None and self.client.alive


@dataclass(slots=True)
class Sent:
    started: float
    expected: list[int]  # indexes of the recipients connected when the send started
    conversation_type: str
    acknowledged: bool = False


@dataclass
class Ledger:
    """Everything measured, as raw records; windows are cut from them afterwards."""

    requests: list[tuple[float, float, int, str]] = field(default_factory=list)  # start, ms, status, kind
    errors: Counter[str] = field(default_factory=Counter)  # "kind status/reason" -> count
    error_examples: dict[str, str] = field(default_factory=dict)
    sent: dict[str, Sent] = field(default_factory=dict)
    arrivals: Arrivals = field(default_factory=lambda: Arrivals(TAG))
    connects: list[tuple[float, float, bool]] = field(default_factory=list)  # start, ms, ok
    connect_failures: list[tuple[float, str]] = field(default_factory=list)
    drops: list[tuple[float, str, str]] = field(default_factory=list)  # time, user, reason
    events: int = 0
    event_names: Counter[str] = field(default_factory=Counter)

    def record(self, kind: str, answer: Answer) -> None:
        self.requests.append((answer.started, answer.seconds * 1000, answer.status, kind))
        if not 200 <= answer.status < 300:
            key = f"{kind} {answer.status or answer.error.split(':')[0]}"
            self.errors[key] += 1
            if key not in self.error_examples:
                self.error_examples[key] = answer.error or answer.body[:300].decode(errors="replace")

    def on_event(self, client: Client, now: float, packet: str) -> None:
        self.events += 1
        if not packet.startswith(MESSAGE_CREATED):
            end = packet.find('"', 3)
            self.event_names[packet[3:end] if end > 3 else packet[:20]] += 1
            return
        self.event_names["message.created"] += 1
        self.arrivals.on_event(client, now, packet)


class SchoolDay:
    def __init__(self, settings: Settings, district: District, realtime_ports: list[int], rng: random.Random) -> None:
        self.settings = settings
        self.district = district
        self.ports = realtime_ports
        self.rng = rng
        self.http = Http("127.0.0.1", settings.gateway_port, timeout=HTTP_TIMEOUT_S, concurrency=1024)
        self.ledger = Ledger()
        self.users: list[User] = []
        self.stopping = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.sends = 0
        self.mass: dict[str, Any] | None = None
        self.index_of: dict[str, int] = {}  # user id -> index, for everyone logged in or logging in

    def make_users(self, count: int) -> list[User]:
        """The next `count` users in login order (see district._login_order)."""
        start = len(self.users)
        for i, user_id in enumerate(self.district.order[start : start + count], start=start):
            conversations = self.district.by_user.get(user_id, [])
            by_type: dict[str, list[Conversation]] = defaultdict(list)
            for c in conversations:
                by_type[c.type].append(c)
            person = self.district.people[user_id]
            self.users.append(
                User(i, user_id, person.role, issue_token(self.settings, user_id), conversations, dict(by_type))
            )
        return self.users[start:]

    # --- a user's day ------------------------------------------------------------------------

    async def login(self, user: User) -> None:
        ledger, http = self.ledger, self.http
        ledger.record("config", await http.get(f"{API}/config"))
        ledger.record("me", await http.get(f"{API}/me", user.token))
        ledger.record("conversations", await http.get(f"{API}/conversations", user.token))
        port = self.ports[user.index % len(self.ports)]
        user.client = Client(
            index=user.index,
            host="127.0.0.1",
            port=port,
            path=self.settings.socketio_path,
            token=user.token,
            on_event=ledger.on_event,
            user_id=user.id,
        )
        started = time.perf_counter()
        try:
            await connect(user.client, timeout=HTTP_TIMEOUT_S)
            ledger.connects.append((started, (time.perf_counter() - started) * 1000, True))
            user.online = True
        except (TimeoutError, ConnectRefused, OSError) as exc:
            ledger.connects.append((started, (time.perf_counter() - started) * 1000, False))
            ledger.connect_failures.append((started, f"{type(exc).__name__}: {exc}"[:200]))
        ledger.record("sync", await http.get(f"{API}/sync", user.token))

    async def live(self, user: User) -> None:
        await self.login(user)
        while not self.stopping.is_set():
            await asyncio.sleep(self.rng.uniform(*THINK_SECONDS))
            if self.stopping.is_set():
                return
            if user.online and not user.alive:
                user.online = False
                self.ledger.drops.append(
                    (time.perf_counter(), user.id, user.client.close_reason if user.client else "")
                )
            await self.act(user)

    async def act(self, user: User) -> None:
        action = self.rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))[0]
        if not user.conversations:
            action = "refresh"
        ledger, http, token = self.ledger, self.http, user.token
        if action == "open":
            c = self.rng.choice(user.conversations)
            ledger.record("messages.page", await http.get(f"{API}/conversations/{c.id}/messages?limit=30", token))
            ledger.record("read", await http.post(f"{API}/conversations/{c.id}/read", token, {}))
        elif action == "refresh":
            ledger.record("conversations", await http.get(f"{API}/conversations", token))
        elif action == "send":
            await self.send(user, self.pick_for_send(user), [])
        elif action == "search":
            ledger.record("search", await http.get(f"{API}/search?q={self.rng.choice(SEARCH_WORDS)}", token))
        elif action == "unread":
            c = self.rng.choice(user.conversations)
            ledger.record("unread", await http.post(f"{API}/conversations/{c.id}/unread", token, {}))
        elif action == "upload":
            answer = await http.upload(f"{API}/attachments", token, *UPLOAD)
            ledger.record("upload", answer)
            if answer.status == 201:
                await self.send(user, self.pick_for_send(user), [answer.json()["items"][0]["id"]])

    def pick_for_send(self, user: User) -> Conversation:
        mix = {k: w for k, w in SEND_MIX.get(user.role, SEND_MIX["student"]).items() if user.by_type.get(k)}
        if not mix:
            return self.rng.choice(user.conversations)
        kind = self.rng.choices(list(mix), weights=list(mix.values()))[0]
        return self.rng.choice(user.by_type[kind])

    async def send(self, user: User, c: Conversation, attachment_ids: list[str]) -> None:
        self.sends += 1
        tag = f"sdb-{user.index}-{self.sends}"
        index = self.index_of
        expected = [index[m] for m in c.members if m != user.id and m in index and self.users[index[m]].alive]
        sent = Sent(time.perf_counter(), expected, c.type)
        self.ledger.sent[tag] = sent
        body = {"body": self.rng.choice(PHRASES), "client_id": tag, "attachment_ids": attachment_ids}
        answer = await self.http.post(f"{API}/conversations/{c.id}/messages", user.token, body)
        sent.started = answer.started
        sent.acknowledged = answer.status == 201
        self.ledger.record("send" if not attachment_ids else "send.file", answer)

    # --- steps -------------------------------------------------------------------------------

    async def add_users(self, count: int) -> float:
        """Log `count` more users in at LOGINS_PER_SECOND, each then living their day; the burst's seconds."""
        new = self.make_users(count)
        self.index_of = {u.id: u.index for u in self.users}
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i, user in enumerate(new):
            delay = started + i / LOGINS_PER_SECOND - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(self.live(user))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return loop.time() - started

    async def mass_message(self) -> None:
        """The administrator's message to a primary school's students and teachers; polled to its end."""
        school = next(s.id for s in self.district.schools if s.level == "primary")
        token = issue_token(self.settings, self.district.admin)
        body = {
            "org_id": DISTRICT,
            "org_ids": [school],
            "roles": ["student", "teacher"],
            "body": "Reminder: the school closes at noon on Friday for staff training.",
        }
        started = time.perf_counter()
        answer = await self.http.post(f"{API}/mass-messages", token, body)
        self.ledger.record("mass.create", answer)
        self.mass = {"started": started, "status": answer.status, "state": None}
        if answer.status not in (200, 201, 202):
            self.mass["state"] = "refused"
            self.mass["error"] = answer.body[:300].decode(errors="replace")
            return
        job = answer.json()
        job = job.get("job", job)
        while time.perf_counter() - started < 300:
            await asyncio.sleep(2.0)
            polled = await self.http.get(f"{API}/mass-messages/{job['id']}", token)
            self.ledger.record("mass.poll", polled)
            if polled.status == 200:
                job = polled.json()
                job = job.get("job", job)
                if job.get("state") in ("completed", "cancelled", "failed"):
                    break
        self.mass.update(
            {
                "state": job.get("state"),
                "seconds": round(time.perf_counter() - started, 1),
                "finished": time.perf_counter(),
                **{k: job.get(k) for k in ("audience", "delivered", "skipped", "failed")},
            }
        )

    async def stop(self) -> None:
        self.stopping.set()
        # Everything is judged by now: users in the middle of a think or a request simply go.
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for u in self.users:
            if u.client is not None:
                u.client.close()


# --- measuring ------------------------------------------------------------------------------------


def rss_mib(stack: Stack) -> dict[str, float]:
    """Resident memory per process of the system (with its children), PostgreSQL and RabbitMQ (all theirs)."""
    table = process_table()

    def rss(pid: int) -> int:
        try:
            return rss_kb(pid)
        except (OSError, RuntimeError):  # gone since the table was read, or a kernel thread
            return 0

    out = {
        name: round(sum(rss(p) for p in descendants(table, proc.pid)) / 1024, 1)
        for name, proc in stack.processes.items()
    }
    for name, comms in SERVERS.items():
        # Summed over the server's processes: PostgreSQL's shared buffers are counted once per backend.
        out[name] = round(sum(rss(pid) for pid, (_, _, comm) in table.items() if comm in comms) / 1024, 1)
    out["load_generator"] = round(rss(os.getpid()) / 1024, 1)
    return out


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_split() -> tuple[float, float]:
    """(user, system) CPU seconds of this process, every thread."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


@dataclass
class Window:
    number: int
    start: float
    end: float
    phase: str  # login (a burst ran in it) or steady
    users: int
    meter: Meter | None = None
    cpu_start: float = 0.0
    split_start: tuple[float, float] = (0.0, 0.0)
    generator_split: tuple[float, float] = (0.0, 0.0)
    usage: dict[str, Any] = field(default_factory=dict)
    generator_cpu_s: float = 0.0
    rss: dict[str, float] = field(default_factory=dict)
    queues: dict[str, int] = field(default_factory=dict)


def _ms(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"count": 0, "mean": None, "p50": None, "p95": None, "p99": None, "max": None}
    return {
        "count": len(values),
        "mean": round(statistics.fmean(values), 1),
        "p50": round(percentile(values, 50), 1),
        "p95": round(percentile(values, 95), 1),
        "p99": round(percentile(values, 99), 1),
        "max": round(max(values), 1),
    }


def judge(day: SchoolDay, w: Window, max_error_rate: float = MAX_ERROR_RATE) -> dict[str, Any]:
    """One window's figures and its verdict, with every reason it is not healthy."""
    ledger = day.ledger
    wall = w.end - w.start
    requests = [r for r in ledger.requests if w.start <= r[0] < w.end]
    failed = [r for r in requests if not 200 <= r[2] < 300]
    timeouts = sum(1 for r in failed if r[2] == 0)
    by_kind: dict[str, list[float]] = defaultdict(list)
    for r in requests:
        by_kind[r[3]].append(r[1])
    errors_by_kind = Counter(f"{r[3]} {r[2] or 'no answer'}" for r in failed)
    http = _ms([r[1] for r in requests])

    push: list[float] = []
    lost = 0
    lost_dropped = 0
    sent_ok = 0
    unacknowledged = 0
    lost_examples: list[str] = []
    for tag, s in ledger.sent.items():
        if not w.start <= s.started < w.end:
            continue
        if not s.acknowledged:
            unacknowledged += 1
            continue
        sent_ok += 1
        got = ledger.arrivals.at.get(tag, {})
        for i in s.expected:
            if i in got:
                push.append((got[i] - s.started) * 1000)
            else:
                lost += 1
                if not day.users[i].alive:
                    lost_dropped += 1
                if len(lost_examples) < 5:
                    lost_examples.append(f"{tag} ({s.conversation_type}) to {day.users[i].id}")
    push_ms = _ms(push)
    connects = [c for c in ledger.connects if w.start <= c[0] < w.end]
    connect_failures = [f for f in ledger.connect_failures if w.start <= f[0] < w.end]
    drops = [d for d in ledger.drops if w.start <= d[0] < w.end]

    reasons = []
    error_rate = len(failed) / len(requests) if requests else 0.0
    if failed and error_rate >= max_error_rate:
        top = ", ".join(f"{k} x{n}" for k, n in errors_by_kind.most_common(4))
        reasons.append(f"HTTP errors+timeouts {error_rate:.2%} >= {max_error_rate:.2%} ({top})")
    if http["mean"] is not None and http["mean"] >= MAX_HTTP_MEAN_MS:
        reasons.append(f"HTTP mean {http['mean']} ms >= {MAX_HTTP_MEAN_MS:.0f} ms")
    if http["p99"] is not None and http["p99"] >= MAX_HTTP_P99_MS:
        slow = max(by_kind, key=lambda k: percentile(by_kind[k], 99))
        reasons.append(
            f"HTTP p99 {http['p99']} ms >= {MAX_HTTP_P99_MS:.0f} ms (slowest: {slow} p99 "
            f"{percentile(by_kind[slow], 99):.0f} ms)"
        )
    if push_ms["p99"] is not None and push_ms["p99"] >= MAX_PUSH_P99_MS:
        reasons.append(f"push p99 {push_ms['p99']} ms >= {MAX_PUSH_P99_MS:.0f} ms")
    if lost:
        reasons.append(f"{lost} message deliveries lost ({lost_dropped} to sockets that dropped), e.g. {lost_examples}")
    if connect_failures:
        reasons.append(f"{len(connect_failures)} sockets failed to connect, e.g. {connect_failures[0][1]}")
    if drops:
        reasons.append(f"{len(drops)} sockets dropped, e.g. {drops[0][1]}: {drops[0][2]}")

    usage = w.usage
    stack_share = {k: round(v / wall, 3) for k, v in {**usage["stack_cpu_s"], **usage["server_cpu_s"]}.items()}
    generator_share = w.generator_cpu_s / wall
    return {
        "window": w.number,
        "phase": w.phase,
        "users": w.users,
        "seconds": round(wall, 1),
        "healthy": not reasons,
        "reasons": reasons,
        "requests": len(requests),
        "requests_per_s": round(len(requests) / wall, 1),
        "errors": len(failed),
        "timeouts": timeouts,
        "error_rate": round(error_rate, 5),
        "errors_by_kind": dict(errors_by_kind.most_common()),
        "http_ms": http,
        "http_ms_by_kind": {k: _ms(v) for k, v in sorted(by_kind.items())},
        "messages_sent": sent_ok,
        "messages_unacknowledged": unacknowledged,
        "messages_per_s": round(sent_ok / wall, 2),
        "deliveries_expected": len(push) + lost,
        "push_ms": push_ms,
        "lost": lost,
        "socket_connects": _ms([c[1] for c in connects if c[2]]),
        "socket_connect_failures": len(connect_failures),
        "socket_drops": len(drops),
        "cpu_share_of_a_core": stack_share,
        "rss_mib": w.rss,
        "queued_messages_at_end": w.queues,
        "machine_busy_share": usage["machine_busy_share"],
        "other_processes_share_of_machine": usage["other_processes_share_of_machine"],
        "generator_cpu_share_of_a_core": round(generator_share, 4),
        # System time is mostly the kernel's loopback TCP: each connect and send runs the
        # receiving side's network stack too, charged to the sender.
        "generator_cpu_user_s": round(w.generator_split[0], 2),
        "generator_cpu_system_s": round(w.generator_split[1], 2),
        "generator_cpu_share_per_1000_users": round(generator_share * 1000 / max(1, w.users), 4),
    }


async def run_step(
    day: SchoolDay, stack: Stack, target: int, args: argparse.Namespace, *, with_mass: bool
) -> dict[str, Any]:
    """Bring the users up to `target` (new ones at 50/s), then hold; judged window by window."""
    new = target - len(day.users)
    burst_s = max(0, new) / LOGINS_PER_SECOND
    n_windows = math.ceil(burst_s / args.window_seconds) + args.windows_per_step
    began = time.perf_counter()
    adding = asyncio.create_task(day.add_users(max(0, new)))
    mass_task: asyncio.Task[None] | None = None
    windows: list[Window] = []
    judged: list[dict[str, Any]] = []
    for n in range(n_windows):
        start = began + n * args.window_seconds
        w = Window(n + 1, start, start + args.window_seconds, "login" if not adding.done() else "steady", target)
        w.meter, w.cpu_start, w.split_start = Meter(stack), cpu_seconds(), cpu_split()
        if with_mass and mass_task is None and n == n_windows - args.windows_per_step:
            mass_task = asyncio.create_task(day.mass_message())
        await asyncio.sleep(max(0.0, w.end - time.perf_counter()))
        if not adding.done():
            w.phase = "login"
        w.usage = w.meter.read()
        w.generator_cpu_s = cpu_seconds() - w.cpu_start
        split = cpu_split()
        w.generator_split = (split[0] - w.split_start[0], split[1] - w.split_start[1])
        w.rss = rss_mib(stack)
        w.queues = await asyncio.to_thread(queue_depths, day.settings)
        windows.append(w)
        online = sum(1 for u in day.users if u.alive)
        print(
            f"  step {target}: window {w.number}/{n_windows} ({w.phase}) done, {online} sockets alive, "
            f"{len(day.ledger.requests)} requests so far"
            + (f"; queued: {dict(sorted(w.queues.items(), key=lambda kv: -kv[1])[:3])}" if w.queues else ""),
            flush=True,
        )
    await adding
    if mass_task is not None and not mass_task.done():
        # The mass message belongs to this step: wait for its end (it is polled every 2 s).
        await asyncio.wait_for(mass_task, timeout=300)
    await asyncio.sleep(PUSH_GRACE_S)  # the last window's messages get their time to arrive
    for u in day.users:  # sockets that dropped since their user last acted
        if u.online and not u.alive:
            u.online = False
            day.ledger.drops.append((windows[-1].end - 1e-3, u.id, u.client.close_reason if u.client else ""))
    judged = [judge(day, w, args.max_error_rate) for w in windows]
    reasons = [f"window {j['window']} ({j['phase']}): {r}" for j in judged for r in j["reasons"]]
    if mass_task is not None and (day.mass or {}).get("state") != "completed":
        reasons.append(f"the mass message ended {(day.mass or {}).get('state')}: {(day.mass or {}).get('error', '')}")
    healthy = not reasons
    steady = [j for j in judged if j["phase"] == "steady"] or judged
    return {
        "users": target,
        "new_users": new,
        "login_burst_s": round(burst_s, 1),
        "healthy": healthy,
        "reasons": reasons,
        "requests_per_s": round(statistics.fmean(j["requests_per_s"] for j in steady), 1),
        "messages_per_s": round(statistics.fmean(j["messages_per_s"] for j in steady), 2),
        "generator_cpu_share_per_1000_users": max(j["generator_cpu_share_per_1000_users"] for j in steady),
        "windows": judged,
    }


# --- the run ---------------------------------------------------------------------------------------


def run_loop(main: Any) -> Any:
    """On uvloop when installed (the test extra has it): the generator's CPU is mostly event-loop work."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.schoolday", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default="1000,2000,5000,10000", help="concurrent users per step, rising")
    parser.add_argument("--window-seconds", type=float, default=60.0)
    parser.add_argument("--windows-per-step", type=int, default=3, help="windows after each step's login burst")
    parser.add_argument("--quick", action="store_true", help="smoke run: steps 300,600, 20 s windows, 1 per step")
    parser.add_argument("--students", type=int, default=19_000)
    parser.add_argument("--teachers", type=int, default=950)
    parser.add_argument("--admins", type=int, default=50)
    parser.add_argument("--realtime", type=int, default=1, help="realtime processes (users spread over them)")
    parser.add_argument(
        "--max-error-rate",
        type=float,
        default=MAX_ERROR_RATE,
        help="a window with this share of HTTP errors+timeouts or more is unhealthy (0: any error is)",
    )
    parser.add_argument("--no-mass", action="store_true", help="skip the administrator's mass message")
    parser.add_argument("--log-dir", type=Path, help="keep the system's logs here (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.window_seconds, args.windows_per_step = "300,600", 20.0, 1
    args.step_list = [int(s) for s in args.steps.split(",")]
    if args.step_list != sorted(args.step_list) or args.step_list[0] < 1:
        parser.error("--steps must be rising numbers of users")
    return args


async def run(args: argparse.Namespace, settings: Settings, stack: Stack, district: District) -> dict[str, Any]:
    ports = [settings.realtime_port, *args.extra_ports]
    day = SchoolDay(settings, district, ports, random.Random(3))
    started_cpu, started_wall = cpu_seconds(), time.perf_counter()
    steps = []
    try:
        for i, target in enumerate(args.step_list):
            if target > len(district.order):
                print(f"step {target}: the district has only {len(district.order)} users who log in; stopping")
                break
            print(f"step {target} users: logging in {target - len(day.users)} at {LOGINS_PER_SECOND:.0f}/s", flush=True)
            step = await run_step(day, stack, target, args, with_mass=i == 0 and not args.no_mass)
            steps.append(step)
            print(step_line(step), flush=True)
            for reason in step["reasons"]:
                print(f"    UNHEALTHY: {reason}", flush=True)
            if not step["healthy"]:
                break
    finally:
        await day.stop()
    wall = time.perf_counter() - started_wall
    cpu = cpu_seconds() - started_cpu
    healthy = [s["users"] for s in steps if s["healthy"]]
    return {
        "steps": steps,
        # Steps stop at the first unhealthy one, so the healthy ones are the steps before it.
        "largest_healthy_step": max(healthy) if healthy else None,
        "events_by_name": dict(day.ledger.event_names.most_common()),
        "mass_message": {k: v for k, v in (day.mass or {}).items() if k not in ("started", "finished")},
        "events_received": day.ledger.events,
        "duplicate_arrivals": day.ledger.arrivals.duplicates,
        "errors_total": dict(day.ledger.errors.most_common()),
        "error_examples": day.ledger.error_examples,
        "generator": {
            "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1),
            "share_of_one_core": round(cpu / wall, 4) if wall else None,
            "peak_users": len(day.users),
        },
    }


def step_line(step: dict[str, Any]) -> str:
    steady = [w for w in step["windows"] if w["phase"] == "steady"] or step["windows"]
    worst_p99 = max((w["http_ms"]["p99"] or 0) for w in step["windows"])
    worst_push = max((w["push_ms"]["p99"] or 0) for w in step["windows"])
    means = [w["http_ms"]["mean"] for w in steady if w["http_ms"]["mean"] is not None]
    cpu: dict[str, float] = defaultdict(float)
    for w in steady:
        for k, v in w["cpu_share_of_a_core"].items():
            cpu[k] += v / len(steady)
    busiest = ", ".join(f"{k} {v:.0%}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])[:5])
    errors = Counter[str]()
    for w in step["windows"]:
        errors.update(w["errors_by_kind"])
    tolerated = (
        f" (with {sum(errors.values())} errors under the threshold: "
        + ", ".join(f"{k} x{n}" for k, n in errors.most_common(3))
        + ")"
        if step["healthy"] and errors
        else ""
    )
    return (
        f"step {step['users']:,} users: {'HEALTHY' if step['healthy'] else 'UNHEALTHY'}{tolerated}; "
        f"{step['requests_per_s']} req/s, {step['messages_per_s']} msg/s; HTTP mean "
        f"{statistics.fmean(means) if means else float('nan'):.0f} ms, worst window p99 {worst_p99:.0f} ms; "
        f"push worst p99 {worst_push:.0f} ms; errors {sum(w['errors'] for w in step['windows'])}, "
        f"lost {sum(w['lost'] for w in step['windows'])}; machine busy "
        f"{statistics.fmean(w['machine_busy_share'] for w in steady):.0%}; CPU of a core: {busiest}; "
        f"generator {step['generator_cpu_share_per_1000_users']:.1%} of a core per 1,000 users"
    )


def summary(report: dict[str, Any]) -> str:
    lines = [
        f"School day, {report['cores']} cores, {report['gateway_workers']} gateway workers, "
        f"{report['realtime_processes']} realtime process(es), at {report['at']}",
        f"District: {report['district']['people']:,} people, {report['district']['classes']:,} classes, "
        f"conversations {report['district']['conversations']} seeded in bulk ({report['seeding']})",
    ]
    lines += [step_line(s) for s in report["steps"]]
    for s in report["steps"]:
        lines += [f"  step {s['users']:,} UNHEALTHY: {r}" for r in s["reasons"]]
    mass = report.get("mass_message")
    if mass:
        lines.append(f"Mass message: {mass}")
    g = report["generator"]
    lines.append(f"Load generator: {g['cpu_s']} s CPU over {g['wall_s']} s ({g['share_of_one_core']:.1%} of a core)")
    for s in report["steps"]:
        if s["generator_cpu_share_per_1000_users"] > GENERATOR_BUDGET_PER_1000:
            lines.append(
                f"WARNING: at {s['users']:,} users the load generator used "
                f"{s['generator_cpu_share_per_1000_users']:.1%} of a core per 1,000 users, over its 5 % budget"
            )
    others = [w["other_processes_share_of_machine"] for s in report["steps"] for w in s["windows"]]
    if others and max(others) > 0.05:
        lines.append(
            f"WARNING: other work took up to {max(others):.0%} of the machine during the run: the figures are "
            "pessimistic"
        )
    largest = report["largest_healthy_step"]
    lines.append(f"Largest healthy step: {f'{largest:,} users' if largest else 'none'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    fds = raise_fd_limit()
    # Here and in the realtime process alike: a socket per user, plus HTTP requests in flight.
    if fds < max(args.step_list) + 1024 + 256:
        print(f"warning: RLIMIT_NOFILE is {fds}, too few for {max(args.step_list):,} users", flush=True)
    settings = bench_settings("schoolday")
    args.extra_ports = [free_port() for _ in range(args.realtime - 1)]
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="schoolday-logs-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"system logs in {log_dir}", flush=True)
    for name in DEFINITIONS:
        drop_database(settings.database_url(name))
    setup(settings, demo=False)
    district = build(students=args.students, teachers=args.teachers, admins=args.admins)
    seeding = seed(settings, district)
    print(f"seeded {district.summary()} in {seeding}", flush=True)
    stack = Stack(settings)
    report: dict[str, Any] = {}
    try:
        stack.start(realtime_ports=[settings.realtime_port, *args.extra_ports], log_dir=log_dir)
        ports = [settings.realtime_port, *args.extra_ports]
        stack.wait_ready(
            [f"http://127.0.0.1:{settings.gateway_port}/readyz"] + [f"http://127.0.0.1:{p}/readyz" for p in ports]
        )
        results = run_loop(run(args, settings, stack, district))
        report = {
            "benchmark": "schoolday",
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "cores": os.cpu_count(),
            "gateway_workers": settings.gateway_workers,
            "realtime_processes": len(ports),
            "fd_limit": fds,
            "settings": {
                "steps": args.step_list,
                "window_seconds": args.window_seconds,
                "windows_per_step": args.windows_per_step,
                "logins_per_second": LOGINS_PER_SECOND,
                "think_seconds": THINK_SECONDS,
                "actions": ACTIONS,
                "send_mix": SEND_MIX,
                "step_up": "users of a step stay connected; the next step logs in only the new ones",
            },
            "health_thresholds": {
                "error_rate_below": args.max_error_rate,
                "http_mean_ms_below": MAX_HTTP_MEAN_MS,
                "http_p99_ms_below": MAX_HTTP_P99_MS,
                "push_p99_ms_below": MAX_PUSH_P99_MS,
                "lost": 0,
            },
            "district": district.summary(),
            "seeding": {"how": "bulk COPY into the directory and conversations databases", **seeding},
            "stack_restarts": dict(stack.restarts),
            **results,
        }
    finally:
        stack.stop()
        delete_topology(settings)
    out = write_report("schoolday", report)
    print(summary(report))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
