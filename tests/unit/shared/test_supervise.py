"""The supervisor's rules: nothing a session raises ends its loop, outages are logged once, retries
come at once and then at most a second apart, and a loop that cannot go on is fatal, never silent."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest

from shared import supervise
from shared.supervise import Loop, Supervisor, backoff_delay, keep_running, unavailable
from tests.support.waiting import wait_for


class Broken(Exception):
    """A bug in a session (not an outage)."""


def _run_in_thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_the_first_retry_is_at_once_and_young_outages_retry_at_most_a_second_apart() -> None:
    assert backoff_delay(0, 0.0) == 0.0
    delays = [backoff_delay(attempt, 5.0) for attempt in range(1, 40)]
    assert all(0 < d <= supervise.YOUNG_CAP for d in delays)
    assert max(delays[-10:]) > 0.4  # it does grow towards the cap
    old = [backoff_delay(attempt, supervise.YOUNG_OUTAGE_SECONDS + 1) for attempt in range(20, 40)]
    assert all(d <= supervise.OLD_CAP for d in old) and max(old) > supervise.YOUNG_CAP


def test_backoff_is_jittered_so_processes_do_not_come_back_in_step() -> None:
    assert len({backoff_delay(8, 1.0) for _ in range(20)}) > 1


@pytest.mark.parametrize(
    "exc",
    [ConnectionRefusedError(111, "refused"), TimeoutError(), ConnectionResetError(104, "reset")],
)
def test_connection_troubles_count_as_unavailable(exc: BaseException) -> None:
    assert unavailable(exc)


def test_a_bug_is_not_unavailability() -> None:
    assert not unavailable(KeyError("x")) and not unavailable(Broken())


def test_the_libraries_outage_errors_count_as_unavailable() -> None:
    import kombu.exceptions
    import psycopg
    import sqlalchemy.exc

    from shared.bus import PublishFailed

    assert unavailable(kombu.exceptions.OperationalError("[Errno 111] Connection refused"))
    assert unavailable(psycopg.OperationalError("the database system is shutting down"))
    assert unavailable(sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("gone")))
    assert unavailable(PublishFailed("publisher confirms timed out"))


def test_a_session_that_keeps_failing_never_ends_its_loop_and_is_retried_at_once_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    supervisor, loop, stop = Supervisor(), Loop("relay t"), threading.Event()
    calls: list[float] = []

    def session() -> None:
        calls.append(time.monotonic())
        if len(calls) < 6:
            raise ConnectionRefusedError(111, "Connection refused")
        loop.up()
        stop.wait()

    with caplog.at_level(logging.WARNING, logger="shared.supervise"):
        thread = _run_in_thread(lambda: keep_running(loop, session, stop, supervisor=supervisor))
        assert wait_for(loop.ready.is_set)
        stop.set()
        thread.join(5)
    assert not thread.is_alive() and supervisor.fatal_reason is None
    assert calls[1] - calls[0] < 0.05, "the first retry waits for nothing"
    assert calls[-1] - calls[0] < 2.0, "five retries of a young outage take well under two seconds"
    failures = [r for r in caplog.records if "Connection refused" in r.getMessage()]
    assert len(failures) == 1, "one outage, one log line"


def test_an_outage_ends_once_the_loop_has_served_steadily_and_a_new_one_is_logged_again(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervise, "STEADY_SECONDS", 0.05)
    loop = Loop("consumer t")
    with caplog.at_level(logging.WARNING, logger="shared.supervise"):
        loop.failed(ConnectionResetError(104, "reset"))
        loop.failed(ConnectionResetError(104, "reset"))
        loop.up()
        time.sleep(0.06)
        loop.beat()
        loop.failed(ConnectionResetError(104, "reset again"))
    messages = [r.getMessage() for r in caplog.records]
    assert sum("reset" in m and "retrying" in m for m in messages) == 2
    assert any("serving again" in m for m in messages)


def test_a_session_that_comes_up_and_fails_at_once_is_one_outage_backing_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    supervisor, loop, stop = Supervisor(), Loop("flapping t"), threading.Event()
    calls: list[float] = []

    def session() -> None:
        calls.append(time.monotonic())
        loop.up()
        if len(calls) >= 8:
            stop.set()
        raise ConnectionResetError(104, "reset")

    with caplog.at_level(logging.WARNING, logger="shared.supervise"):
        keep_running(loop, session, stop, supervisor=supervisor)
    assert len([r for r in caplog.records if "reset" in r.getMessage()]) == 1
    assert calls[-1] - calls[-2] > 0.2, "a flapping session backs off instead of hammering the broker"


def test_a_bug_in_a_session_is_logged_with_its_traceback_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    supervisor, loop, stop = Supervisor(), Loop("sweeper t"), threading.Event()
    calls = []

    def session() -> None:
        calls.append(1)
        if len(calls) == 3:
            stop.set()
        raise Broken("a bug")

    with caplog.at_level(logging.ERROR, logger="shared.supervise"):
        keep_running(loop, session, stop, supervisor=supervisor)
    assert len(calls) == 3 and supervisor.fatal_reason is None
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.exc_info is not None and "sweeper t" in record.getMessage()


def test_readiness_follows_every_loop() -> None:
    supervisor = Supervisor()
    a, b = Loop("a"), Loop("b")
    supervisor.add(a)
    supervisor.add(b)
    a.up()
    assert not supervisor.ready()
    b.up()
    assert supervisor.ready()
    b.failed(ConnectionRefusedError(111, "refused"))
    assert not supervisor.ready()
    report = supervisor.report()["loops"]
    assert report["a"]["ready"] and not report["b"]["ready"] and "refused" in report["b"]["error"]


def test_a_loop_stopped_on_purpose_leaves_readiness() -> None:
    supervisor, loop, stop = Supervisor(), Loop("t"), threading.Event()

    def session() -> None:
        loop.up()
        stop.wait()

    thread = _run_in_thread(lambda: keep_running(loop, session, stop, supervisor=supervisor))
    assert wait_for(supervisor.ready)
    stop.set()
    thread.join(5)
    assert supervisor.report()["loops"] == {} and supervisor.fatal_reason is None


def test_something_a_loop_cannot_survive_is_fatal_and_takes_readiness_down() -> None:
    supervisor, loop, stop = Supervisor(), Loop("relay t"), threading.Event()
    reasons: list[str] = []
    supervisor.on_fatal(reasons.append)

    def session() -> None:
        loop.up()
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        keep_running(loop, session, stop, supervisor=supervisor)
    assert not supervisor.ready() and len(reasons) == 1 and "relay t" in reasons[0]


def test_a_loop_that_stops_moving_is_fatal() -> None:
    supervisor, loop, stop = Supervisor(), Loop("stuck t", stall_seconds=0.5), threading.Event()
    reasons: list[str] = []
    supervisor.on_fatal(reasons.append)

    def session() -> None:
        loop.up()
        stop.wait()  # never beats

    thread = _run_in_thread(lambda: keep_running(loop, session, stop, supervisor=supervisor))
    try:
        assert wait_for(lambda: bool(reasons), timeout=5), "the watchdog saw nothing"
        assert "stuck t" in reasons[0] and not supervisor.ready()
    finally:
        stop.set()
        thread.join(5)


def test_a_long_back_off_is_not_taken_for_a_stall(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervise, "YOUNG_CAP", 3.0)
    monkeypatch.setattr(supervise, "backoff_delay", lambda attempt, age: 2.5 if attempt else 0.0)
    supervisor, loop, stop = Supervisor(), Loop("patient t", stall_seconds=1.5), threading.Event()
    calls = []

    def session() -> None:
        calls.append(1)
        if len(calls) == 3:
            stop.set()
        raise ConnectionRefusedError(111, "refused")

    keep_running(loop, session, stop, supervisor=supervisor)
    assert supervisor.fatal_reason is None


def test_a_loop_that_says_it_serves_again_and_again_still_ends_its_outage(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervise, "STEADY_SECONDS", 0.05)
    loop = Loop("standby t")
    with caplog.at_level(logging.WARNING, logger="shared.supervise"):
        loop.failed(ConnectionRefusedError(111, "refused"))
        for _ in range(4):  # a standby relay checks in on every poll
            loop.up()
            time.sleep(0.02)
    assert any("serving again" in r.getMessage() for r in caplog.records)
    assert loop.failing_for == 0.0
