"""Keeping a process's background loops running, and telling the truth about them.

Every long-running loop of a process (outbox relays, the change logger, event consumers, RPC
workers, the realtime feed, sweepers) runs as `keep_running(loop, session, stop)`: `session`
connects, calls `loop.up()` once it serves, and works until it returns or raises. Whatever it
raises is caught; the loop is marked down, the outage is logged once (not on every retry), and
the session starts again after a capped, jittered back-off: the first retry at once, then at
most a second apart while the outage is young, so a loop is back within about a second of the
broker or the database.

A loop that cannot be kept running (its thread ends while the process lives, a `BaseException`
escapes, or it has not moved for `stall_seconds`) is fatal: readiness goes down and the
process's `on_fatal` callbacks run, which exit the process non-zero so that its supervisor
(compose, Kubernetes, the local runner) starts it again. A process that answers "ready" while a
loop of it is dead is the one outcome this module exists to prevent.
"""

from __future__ import annotations

import logging
import random
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# The outage is over once the loop has served this long; a session that fails sooner is the same
# outage going on (logged once, and backing off further rather than retrying at once again).
STEADY_SECONDS = 2.0
# While a loop has been failing for less than this, retries are at most `YOUNG_CAP` apart.
YOUNG_OUTAGE_SECONDS = 60.0
YOUNG_CAP = 1.0
OLD_CAP = 5.0
# A long outage is logged again this often, so an operator sees it is still going on.
REMIND_EVERY_SECONDS = 60.0
# A session that returned without being asked to stop (a standby that lost its turn) starts again after this.
CLEAN_RESTART_SECONDS = 0.1


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` means "the broker or the database is away" (retry later), rather than a bug.

    Looks only at libraries this process has imported, so a process without a database (realtime)
    never imports a database driver to answer.
    """
    if isinstance(exc, OSError):  # refused, reset, timed out, unreachable
        return True
    if (bus := sys.modules.get("shared.bus")) is not None and isinstance(exc, bus.PublishFailed):
        return True
    if (amqp := sys.modules.get("amqp.exceptions")) is not None and isinstance(
        exc, amqp.ConnectionError | amqp.RecoverableConnectionError | amqp.RecoverableChannelError
    ):
        return True
    if (kombu := sys.modules.get("kombu.exceptions")) is not None and isinstance(exc, kombu.OperationalError):
        return True
    if (psycopg := sys.modules.get("psycopg")) is not None and isinstance(exc, psycopg.OperationalError):
        return True
    if (sa := sys.modules.get("sqlalchemy.exc")) is not None:
        if isinstance(exc, sa.OperationalError | sa.InterfaceError | sa.DisconnectionError):
            return True
        if isinstance(exc, sa.DBAPIError) and exc.connection_invalidated:
            return True
    return False


def backoff_delay(attempt: int, outage_age: float, *, base: float = 0.1) -> float:
    """Seconds to wait before retry number `attempt` (0 = the first retry, at once).

    Exponential from `base`, capped at `YOUNG_CAP` while the outage is young and `OLD_CAP` after,
    with jitter ("equal jitter": between half and all of it) so many processes coming back after
    the same outage do not knock on the broker at the same instant.
    """
    if attempt <= 0:
        return 0.0
    cap = YOUNG_CAP if outage_age < YOUNG_OUTAGE_SECONDS else OLD_CAP
    delay = min(cap, base * 2 ** (attempt - 1))
    return random.uniform(delay / 2, delay)


class Loop:
    """One background loop's state: ready or not, the outage under way, the last sign of life."""

    def __init__(self, name: str, *, stall_seconds: float | None = None) -> None:
        self.name = name
        self.stall_seconds = stall_seconds
        self.ready = threading.Event()
        self.last_beat = time.monotonic()
        self.failures = 0  # retries in the outage under way
        self.last_error: str | None = None
        self._outage_since: float | None = None
        self._up_since: float | None = None
        self._reminded = 0.0

    @property
    def failing_for(self) -> float:
        """Seconds the outage under way has lasted (0 when there is none)."""
        return 0.0 if self._outage_since is None else time.monotonic() - self._outage_since

    def beat(self) -> None:
        """The loop is moving (call at least every few seconds while it serves or waits)."""
        now = time.monotonic()
        self.last_beat = now
        if self._outage_since is not None and self._up_since is not None and now - self._up_since >= STEADY_SECONDS:
            log.warning(
                "%s: serving again after %.1fs and %d retries",
                self.name,
                self._up_since - self._outage_since,
                self.failures,
            )
            self._outage_since, self.failures, self.last_error = None, 0, None

    def up(self) -> None:
        """The session serves: ready from now on (the outage ends once it stays up). Saying it again
        while up (a standby checking in, then taking over) keeps the time it came up."""
        if not self.ready.is_set():
            self._up_since = time.monotonic()
            self.ready.set()
        self.beat()

    def failed(self, exc: BaseException) -> None:
        """The session ended with `exc`: not ready; log it if it starts an outage."""
        self.ready.clear()
        now = time.monotonic()
        self._up_since = None
        self.last_error = f"{type(exc).__name__}: {exc}"[:500]
        if self._outage_since is None:
            self._outage_since, self._reminded, self.failures = now, now, 0
            if unavailable(exc):
                log.warning("%s: %s; retrying", self.name, self.last_error)
            else:
                log.error("%s failed; retrying", self.name, exc_info=exc)
        elif now - self._reminded >= REMIND_EVERY_SECONDS:
            self._reminded = now
            log.warning("%s: still failing after %.0fs: %s", self.name, now - self._outage_since, self.last_error)
        self.failures += 1

    def down(self) -> None:
        """The session ended without an error (standing down, a lost lock): not ready until up again."""
        self.ready.clear()
        self._up_since = None

    def status(self) -> dict[str, Any]:
        return {
            "ready": self.ready.is_set(),
            "failing_for": round(self.failing_for, 1),
            "retries": self.failures,
            "error": self.last_error,
        }


class Supervisor:
    """The loops of one process: readiness is "every loop serves"; a dead loop is fatal."""

    def __init__(self) -> None:
        self.loops: dict[int, Loop] = {}
        self.fatal_reason: str | None = None
        self._on_fatal: list[Callable[[str], None]] = []
        self._lock = threading.Lock()
        self._watchdog: threading.Thread | None = None

    def add(self, loop: Loop) -> None:
        with self._lock:
            self.loops[id(loop)] = loop
            if loop.stall_seconds is not None and self._watchdog is None:
                self._watchdog = threading.Thread(target=self._watch, name="loop-watchdog", daemon=True)
                self._watchdog.start()

    def remove(self, loop: Loop) -> None:
        with self._lock:
            self.loops.pop(id(loop), None)

    def ready(self) -> bool:
        with self._lock:
            loops = list(self.loops.values())
        return self.fatal_reason is None and all(loop.ready.is_set() for loop in loops)

    def report(self) -> dict[str, Any]:
        """What readiness is made of, for /readyz and health checks."""
        with self._lock:
            loops = list(self.loops.values())
        return {
            "fatal": self.fatal_reason,
            "loops": {loop.name: loop.status() for loop in sorted(loops, key=lambda loop: loop.name)},
        }

    def on_fatal(self, callback: Callable[[str], None]) -> None:
        """Run `callback(reason)` when a loop cannot be kept running (the process should exit non-zero)."""
        self._on_fatal.append(callback)

    def fatal(self, reason: str) -> None:
        if self.fatal_reason is not None:
            return
        self.fatal_reason = reason
        log.critical("%s; this process cannot keep its loops running and stops", reason)
        for callback in self._on_fatal:
            try:
                callback(reason)
            except Exception:  # noqa: BLE001  (every callback gets its turn)
                log.exception("fatal callback failed")

    def _watch(self) -> None:
        while self.fatal_reason is None:
            time.sleep(1.0)
            now = time.monotonic()
            with self._lock:
                loops = list(self.loops.values())
            for loop in loops:
                if loop.stall_seconds is not None and now - loop.last_beat > loop.stall_seconds:
                    self.fatal(f"{loop.name} has not moved for {now - loop.last_beat:.0f}s")
                    return


# The loops of this process.
PROCESS = Supervisor()


def keep_running(
    loop: Loop,
    session: Callable[[], None],
    stop: threading.Event,
    *,
    supervisor: Supervisor | None = None,
) -> None:
    """Run `session` again and again until `stop` is set, surviving anything it raises.

    `session` calls `loop.up()` once it serves, `loop.beat()` while it does, and returns when
    `stop` is set (or when it stands down by itself). Blocks until `stop`.
    """
    supervisor = supervisor or PROCESS
    supervisor.add(loop)
    ended_cleanly = False
    try:
        while not stop.is_set():
            try:
                session()
            except Exception as exc:  # noqa: BLE001  (the point of a supervisor: nothing ends the loop)
                loop.failed(exc)
            else:
                loop.down()
            if stop.is_set():
                break
            # A session that stood down by itself starts again shortly; one that failed backs off.
            delay = backoff_delay(loop.failures - 1, loop.failing_for) if loop.failures else CLEAN_RESTART_SECONDS
            # Wait in steps, beating, so that a long back-off is not taken for a stall.
            deadline = time.monotonic() + delay
            while (remaining := deadline - time.monotonic()) > 0 and not stop.wait(min(remaining, 1.0)):
                loop.beat()
            loop.beat()
        ended_cleanly = True
    except BaseException as exc:
        supervisor.fatal(f"{loop.name} ended: {type(exc).__name__}: {exc}")
        raise
    finally:
        loop.ready.clear()
        if ended_cleanly:
            supervisor.remove(loop)
        elif supervisor.fatal_reason is None:
            supervisor.fatal(f"{loop.name} ended while its process runs")


def start_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """A daemon thread for a supervised loop (the process exits through `on_fatal`, not by waiting on it)."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


class Supervised:
    """A background loop as an object: `run()` keeps `session()` going (`keep_running`) until `stop()`;
    `ready` is set while it serves. Subclasses implement `session()`."""

    def __init__(self, name: str, *, stall_seconds: float | None = None) -> None:
        self.loop = Loop(name, stall_seconds=stall_seconds)
        self._stop = threading.Event()

    @property
    def ready(self) -> threading.Event:
        return self.loop.ready

    def run(self) -> None:
        keep_running(self.loop, self.session, self._stop)

    def stop(self) -> None:
        self._stop.set()

    def session(self) -> None:
        raise NotImplementedError


class Periodic(Supervised):
    """`work()` every `every` seconds, kept running through any outage; ready once it has worked.

    Subclasses set `name` and `every` and implement `work()`. A failing round ends the session:
    it is retried with the supervisor's back-off (at once, then at most a second apart while the
    outage is young), not left for the next period.
    """

    name = "periodic"
    every = 60.0
    queue = None  # reads no queue (see shared.service.Worker)

    def __init__(self, *, stall_seconds: float | None = None) -> None:
        super().__init__(self.name, stall_seconds=stall_seconds)

    def work(self) -> object:
        raise NotImplementedError

    def session(self) -> None:
        while not self._stop.is_set():
            self.work()
            self.loop.up()
            deadline = time.monotonic() + self.every
            while (remaining := deadline - time.monotonic()) > 0:
                if self._stop.wait(min(remaining, 1.0)):
                    return
                self.loop.beat()
