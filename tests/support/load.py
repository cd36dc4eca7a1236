"""A steady load through the whole system, and what it tells about a fault: lost, twice, late, slow.

Ten teacher–student 1:1 pairs (`bench.latency.teacher_student_pairs`, so no rule refuses them).
Each teacher is a thread sending `POST /conversations/{id}/messages {body, client_id}` at a
fixed pace (2.5 a second each, 25 a second in all), one message at a time as a person types
(every fourth as `POST /conversations {recipients, body, client_id}`, which the directory vets),
each with a unique client_id and body. On anything but a 2xx or a final 4xx (a 5xx, a timeout,
a refused or reset connection, 408 or 429) it sends the SAME client_id again after a short
pause, as a real client does, until the message is acknowledged. Each student listens with a
`Listener`: Socket.IO push on the realtime URLs, moving to another process when its connection
drops, catching up from `GET /sync` on every (re)connect and on `resync`.

What a `Report` counts, per fault:
- acknowledged: sends that got a 2xx (its message id);
- lost: acknowledged but not stored (the conversation read back over HTTP, every page);
- twice: stored messages of this load whose client_id or body another stored message shares;
- not_received: acknowledged but never applied by the student (push or /sync) within the drain wait
  (up to 20 s after the load stopped, 5 s or more after the fault; it ends early once nothing more
  has arrived for 10 s);
- refused: sends answered with a final 4xx (a fault must not turn a good send into a refusal);
- internal_errors: attempts answered 500 ("something went wrong"): a service that is down or
  restarting is "unavailable, try again" (503), which clients know to retry; a 500 says a bug;
- unacknowledged: sends still unanswered when the load gave up on them (15 s after it stopped);
- recovery_s: seconds from the end of the fault until sends are fast again. An attempt is bad
  when it fails or takes more than 1 s; the system is recovered at the start of the first good
  attempt begun after the last bad attempt begun after the fault ended (attempts still in flight
  when the next fault began are that fault's, not this one's recovery) (or, when none was bad,
  the first attempt begun after the end). From then on every send completes on its first
  attempt within 1 s. An attempt begun during the fault is the fault's, not the recovery's,
  however long it hangs; but recovery is only seen at a good attempt, so while every sender
  still hangs in one begun during the fault, the clock runs. None when sends were still bad
  (or none was made) when the load stopped.
- max_latency_s: the longest time from a send's first attempt to its acknowledgement, among
  sends begun from the fault's start on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench.latency import teacher_student_pairs
from shared.auth import issue_token
from shared.config import Settings
from tests.support.failover import FailoverClient

log = logging.getLogger(__name__)

PAIRS = 10
PER_SENDER_PER_SECOND = 2.5
# Every fourth message goes as `POST /conversations` to the student (it lands in their 1:1), which asks
# the directory whether they may talk: so the directory is on the path of the load as well.
CREATE_EVERY = 4
REQUEST_TIMEOUT = 5.0
RETRY_PAUSE = 0.2
GIVE_UP_AFTER_STOP = 15.0
SLOW_ATTEMPT = 1.0
RETRYABLE_4XX = {408, 429}


class Listener(FailoverClient):
    """A FailoverClient that keeps catching up through a whole fault, however long its API is away."""

    catch_up_for = 90.0


@dataclass
class Attempt:
    started: float
    ended: float
    outcome: str  # the HTTP status, or the exception's name
    detail: str = ""  # the start of the answer, when it was not a 2xx

    @property
    def ok(self) -> bool:
        return self.outcome.startswith("2")

    @property
    def bad(self) -> bool:
        return not self.ok or self.ended - self.started > SLOW_ATTEMPT


@dataclass
class Send:
    client_id: str
    body: str
    conversation_id: str
    sender: str
    recipient: str
    first_attempt: float = 0.0
    acked_at: float | None = None
    message_id: str | None = None
    refused: int | None = None
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def latency(self) -> float | None:
        return None if self.acked_at is None else self.acked_at - self.first_attempt


@dataclass
class Pair:
    teacher: str
    student: str
    conversation_id: str
    start_seq: int
    listener: Listener


@dataclass
class Report:
    fault: str
    acknowledged: int
    lost: int
    twice: int
    not_received: int
    refused: int
    unacknowledged: int
    internal_errors: int  # answers 500: "something went wrong" where the truth is "unavailable, try again" (503)
    recovery_s: float | None
    max_latency_s: float | None
    sends: int
    retried: int  # sends that needed more than one attempt
    attempts_retried: int  # attempts beyond the first, in all
    fault_s: float  # how long the fault lasted
    details: dict[str, Any] = field(default_factory=dict)

    def problems(self, *, max_recovery: float = 2.0) -> list[str]:
        found = []
        for name in ("lost", "twice", "not_received", "refused", "unacknowledged", "internal_errors"):
            if getattr(self, name):
                found.append(f"{name}={getattr(self, name)}")
        if self.acknowledged == 0:
            found.append("nothing was acknowledged")
        if self.recovery_s is None:
            found.append("sends were still failing or slow when the load stopped (never recovered)")
        elif self.recovery_s > max_recovery:
            found.append(f"recovery took {self.recovery_s:.2f}s > {max_recovery}s")
        return found

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Load:
    def __init__(
        self,
        settings: Settings,
        api: str,
        realtime_urls: list[str],
        *,
        pairs: int = PAIRS,
        per_sender_per_second: float = PER_SENDER_PER_SECOND,
        tag: str = "",
    ) -> None:
        self.settings, self.api, self.realtime_urls = settings, api, realtime_urls
        self.interval = 1.0 / per_sender_per_second
        self.pair_count = pairs
        self.tag = tag or uuid.uuid4().hex[:8]
        self.pairs: list[Pair] = []
        self.sends: list[Send] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._give_up = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started_at = 0.0
        self.stopped_at: float | None = None

    # Running --------------------------------------------------------------------------------

    def token(self, user_id: str) -> str:
        # Minted here, not fetched from the gateway: a listener must not depend on the service a fault hurts.
        return issue_token(self.settings, user_id)

    def start(self) -> Load:
        for teacher, student in teacher_student_pairs(self.pair_count):
            response = requests.post(
                f"{self.api}/conversations",
                json={"recipients": [{"type": "user", "id": student}], "body": f"load {self.tag} starts"},
                headers={"Authorization": f"Bearer {self.token(teacher)}"},
                timeout=15,
            )
            if response.status_code != 201:
                raise RuntimeError(f"{teacher} -> {student}: {response.status_code} {response.text}")
            started = response.json()
            token = self.token(student)
            listener = Listener(
                self.realtime_urls,
                self.api,
                lambda token=token: token,
                socketio_path=self.settings.socketio_path,
                retry_for=60.0,
            ).start()
            self.pairs.append(
                Pair(teacher, student, started["conversation"]["id"], started["message"]["seq"], listener)
            )
        self.started_at = time.monotonic()
        for i, pair in enumerate(self.pairs):
            offset = i * self.interval / len(self.pairs)  # spread the senders over the interval
            thread = threading.Thread(target=self._sender, args=(pair, offset), name=f"load-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _sender(self, pair: Pair, offset: float) -> None:
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {self.token(pair.teacher)}"
        next_at = self.started_at + offset
        n = 0
        while not self._stop.is_set():
            pause = next_at - time.monotonic()
            if pause > 0 and self._stop.wait(pause):
                break
            n += 1
            create = n % CREATE_EVERY == 0
            client_id = f"{self.tag}-{pair.teacher}-{n}-{uuid.uuid4().hex[:6]}" + ("c" if create else "m")
            send = Send(client_id, f"fault load {client_id}", pair.conversation_id, pair.teacher, pair.student)
            with self._lock:
                self.sends.append(send)
            self._deliver(http, send, create=create)
            # A sender that fell behind (its message took long) goes on at the pace, without a burst.
            next_at = max(next_at + self.interval, time.monotonic())

    def _deliver(self, http: requests.Session, send: Send, *, create: bool) -> None:
        payload: dict[str, Any] = {"body": send.body, "client_id": send.client_id}
        url = f"{self.api}/conversations/{send.conversation_id}/messages"
        if create:
            url, payload["recipients"] = f"{self.api}/conversations", [{"type": "user", "id": send.recipient}]
        send.first_attempt = time.monotonic()
        while not self._give_up.is_set():
            started = time.monotonic()
            try:
                response = http.post(url, json=payload, timeout=REQUEST_TIMEOUT)
                outcome = str(response.status_code)
            except requests.RequestException as exc:
                response, outcome = None, type(exc).__name__
            ended = time.monotonic()
            detail = response.text[:200] if response is not None and response.status_code >= 300 else ""
            send.attempts.append(Attempt(started, ended, outcome, detail))
            if response is not None and 200 <= response.status_code < 300:
                answer = response.json()
                send.message_id = answer["message"]["id"] if create else answer["id"]
                if create and answer["conversation"]["id"] != send.conversation_id:
                    # Not the pair's 1:1 after all: read it back from where it went.
                    send.conversation_id = answer["conversation"]["id"]
                send.acked_at = ended
                return
            if response is not None and 400 <= response.status_code < 500 and response.status_code not in RETRYABLE_4XX:
                send.refused = response.status_code
                log.warning("load: %s refused with %s: %s", send.client_id, response.status_code, response.text)
                return
            if self._give_up.wait(RETRY_PAUSE):
                return

    def stop(self) -> None:
        """Stop sending new messages; those in hand are retried until acknowledged (or 15 s pass)."""
        self._stop.set()
        self.stopped_at = time.monotonic()
        deadline = time.monotonic() + GIVE_UP_AFTER_STOP
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        self._give_up.set()
        for thread in self._threads:
            thread.join(5)

    def close(self) -> None:
        if not self._stop.is_set():
            self.stop()
        self._give_up.set()
        for pair in self.pairs:
            try:
                pair.listener.close()
            except Exception:  # noqa: BLE001  (closing a client whose server may be gone)
                pass

    # What happened ----------------------------------------------------------------------------

    def acknowledged(self) -> list[Send]:
        with self._lock:
            return [s for s in self.sends if s.message_id is not None]

    def not_received(self) -> list[Send]:
        received = {p.student: set(p.listener.message_ids()) for p in self.pairs}
        return [s for s in self.acknowledged() if s.message_id not in received[s.recipient]]

    def drain(self, timeout: float = 20.0, *, stalled: float = 10.0) -> float:
        """Wait until every acknowledged message reached its student: at most `timeout`, and no longer than
        `stalled` once nothing more arrives (what a dead relay holds never comes). The seconds waited."""
        started = last_progress = time.monotonic()
        missing = len(self.not_received())
        while missing and time.monotonic() - started < timeout and time.monotonic() - last_progress < stalled:
            time.sleep(0.2)
            now_missing = len(self.not_received())
            if now_missing < missing:
                missing, last_progress = now_missing, time.monotonic()
        return time.monotonic() - started

    def stored(self) -> dict[str, list[dict[str, Any]]]:
        """Each conversation the load sent into, as stored, read back over HTTP page by page (newest first),
        down to where this load began."""
        out: dict[str, list[dict[str, Any]]] = {}
        with self._lock:
            elsewhere = {s.conversation_id: s.recipient for s in self.sends}
        readers = {p.conversation_id: (p.student, p.start_seq) for p in self.pairs}
        for cid, student in elsewhere.items():
            readers.setdefault(cid, (student, 0))
        for cid, (student, start_seq) in readers.items():
            http = requests.Session()
            http.headers["Authorization"] = f"Bearer {self.token(student)}"
            items: list[dict[str, Any]] = []
            cursor: str | None = None
            while True:
                params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
                response = http.get(f"{self.api}/conversations/{cid}/messages", params=params, timeout=15)
                response.raise_for_status()
                page = response.json()
                items += page["items"]
                cursor = page.get("next_cursor")
                if not cursor or any(item["seq"] <= start_seq for item in page["items"]):
                    break
            out[cid] = [i for i in items if i["seq"] > start_seq]
        return out

    def report(self, fault: str, fault_windows: list[tuple[float, float]], *, drain_timeout: float = 30.0) -> Report:
        """Stop, drain, read back, and count. `fault_windows`: (start, end) of each fault, monotonic seconds."""
        if not self._stop.is_set():
            self.stop()
        drained = self.drain(drain_timeout)
        with self._lock:
            sends = list(self.sends)
        acked = [s for s in sends if s.message_id is not None]
        stored = self.stored()
        stored_ids = {m["id"] for ms in stored.values() for m in ms}
        by_client_id: dict[str, int] = {}
        by_body: dict[str, int] = {}
        for messages in stored.values():
            for m in messages:
                if m.get("client_id"):
                    by_client_id[m["client_id"]] = by_client_id.get(m["client_id"], 0) + 1
                by_body[m["body"]] = by_body.get(m["body"], 0) + 1
        ours = {s.client_id for s in sends}
        twice = sum(n - 1 for cid, n in by_client_id.items() if cid in ours and n > 1)
        twice += sum(n - 1 for body, n in by_body.items() if body.startswith("fault load ") and n > 1)
        lost = [s for s in acked if s.message_id not in stored_ids]
        not_received = self.not_received()
        # Each fault's recovery is judged until the next fault begins (or the load stopped).
        nexts = [start for start, _ in fault_windows[1:]] + [self.stopped_at or time.monotonic()]
        recoveries = [self._recovery(sends, end, until) for (_, end), until in zip(fault_windows, nexts, strict=True)]
        recovery = None if any(r is None for r in recoveries) else max(recoveries, default=0.0)
        first_fault = min((start for start, _ in fault_windows), default=self.started_at)
        latencies = [s.latency for s in acked if s.first_attempt >= first_fault - 0.5 and s.latency is not None]
        return Report(
            fault=fault,
            acknowledged=len(acked),
            lost=len(lost),
            twice=twice,
            not_received=len(not_received),
            refused=sum(1 for s in sends if s.refused is not None),
            unacknowledged=sum(1 for s in sends if s.message_id is None and s.refused is None),
            internal_errors=sum(1 for s in sends for a in s.attempts if a.outcome == "500"),
            recovery_s=None if recovery is None else round(recovery, 3),
            max_latency_s=round(max(latencies), 3) if latencies else None,
            sends=len(sends),
            retried=sum(1 for s in sends if len(s.attempts) > 1),
            attempts_retried=sum(max(0, len(s.attempts) - 1) for s in sends),
            fault_s=round(sum(end - start for start, end in fault_windows), 3),
            details={
                "recovery_s_each": [None if r is None else round(r, 3) for r in recoveries],
                # The last bad attempts after each fault ended: (seconds after its end, seconds taken, outcome).
                "last_bad_after_each": [
                    self._last_bad(sends, end, until) for (_, end), until in zip(fault_windows, nexts, strict=True)
                ],
                "drain_waited_s": round(drained, 2),
                "outcomes": self._outcomes(sends),
                "lost_examples": [s.client_id for s in lost[:5]],
                "error_examples": sorted({a.detail for s in sends for a in s.attempts if a.detail})[:5],
                "not_received_examples": [
                    {
                        "client_id": s.client_id,
                        "acked_s_after_load_start": round((s.acked_at or 0) - self.started_at, 2),
                    }
                    for s in not_received[:5]
                ],
                "first_not_received_s_after_load_start": (
                    round(min((s.acked_at or 0) for s in not_received) - self.started_at, 2) if not_received else None
                ),
                "fault_windows_s_after_load_start": [
                    [round(a - self.started_at, 2), round(b - self.started_at, 2)] for a, b in fault_windows
                ],
                "reconnects": {p.student: len(p.listener.connected_to) for p in self.pairs},
                "via_create": sum(1 for s in sends if s.client_id.endswith("c")),
                "sent_outside_the_pairs_conversation": sum(
                    1 for s in sends if s.conversation_id not in {p.conversation_id for p in self.pairs}
                ),
            },
        )

    def _last_bad(
        self, sends: list[Send], fault_end: float, until: float, count: int = 3
    ) -> list[tuple[float, float, str]]:
        bad = [a for a in self._judged(sends, fault_end, until) if a.bad]
        return [(round(a.started - fault_end, 3), round(a.ended - a.started, 3), a.outcome) for a in bad[-count:]]

    @staticmethod
    def _judged(sends: list[Send], fault_end: float, until: float) -> list[Attempt]:
        """The attempts that tell about recovery from a fault: begun after it ended, and over before the
        next fault began (one still in flight then may have been hit by that one: it is not this one's)."""
        return sorted(
            (a for s in sends for a in s.attempts if fault_end <= a.started and a.ended < until),
            key=lambda a: a.started,
        )

    def _recovery(self, sends: list[Send], fault_end: float, until: float) -> float | None:
        attempts = self._judged(sends, fault_end, until)
        bad = [a for a in attempts if a.bad]
        # Recovered at the first good attempt begun after the last bad one: no sooner can anyone tell.
        after = bad[-1].started if bad else fault_end
        good = [a.started for a in attempts if not a.bad and (a.started > after if bad else a.started >= after)]
        return good[0] - fault_end if good else None

    @staticmethod
    def _outcomes(sends: list[Send]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in sends:
            for a in s.attempts:
                counts[a.outcome] = counts.get(a.outcome, 0) + 1
        return counts


def record(path: Path, name: str, report: Report, **extra: Any) -> None:
    """Add (or replace) this fault's entry in the figures file an engineer can quote."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        entries = {}
    entries[name] = {**report.to_dict(), **extra, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    path.write_text(json.dumps(entries, indent=2, sort_keys=False) + "\n")
