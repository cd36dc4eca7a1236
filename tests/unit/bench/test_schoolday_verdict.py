"""The school-day benchmark's verdict on a window: nothing lost, errors counted, reasons given."""

from __future__ import annotations

from types import SimpleNamespace

from bench.httpload import Answer
from bench.schoolday import Ledger, Sent, Window, judge

USAGE = {
    "stack_cpu_s": {"gateway": 1.0},
    "server_cpu_s": {"postgres": 1.0},
    "machine_busy_share": 0.5,
    "other_processes_share_of_machine": 0.0,
}


def _day(*, alive: int = 2) -> SimpleNamespace:
    users = [SimpleNamespace(id=f"user-{i}", alive=i < alive) for i in range(3)]
    return SimpleNamespace(ledger=Ledger(), users=users, mass=None)


def _window() -> Window:
    return Window(1, start=100.0, end=160.0, phase="steady", users=3, usage=USAGE)


def _requests(day: SimpleNamespace, ok: int, failed: int = 0, status: int = 503) -> None:
    for i in range(ok):
        day.ledger.record("me", Answer(200, b"{}", 101.0 + i * 0.01, 0.01))
    for i in range(failed):
        day.ledger.record("me", Answer(status, b"", 102.0 + i * 0.01, 0.01, "" if status else "timeout after 10s"))


def _message(day: SimpleNamespace, tag: str, expected: list[int], arrived: dict[int, float]) -> None:
    day.ledger.sent[tag] = Sent(110.0, expected, "direct", acknowledged=True)
    day.ledger.arrivals.at[tag] = arrived


def test_a_clean_window_is_healthy() -> None:
    day = _day()
    _requests(day, 100)
    _message(day, "sdb-0-1", [1], {1: 110.05})
    verdict = judge(day, _window())
    assert verdict["healthy"], verdict["reasons"]
    assert verdict["push_ms"]["p99"] == 50.0


def test_a_message_missing_on_a_connected_recipient_makes_the_window_unhealthy() -> None:
    day = _day()
    _requests(day, 100)
    _message(day, "sdb-0-1", [0, 1], {0: 110.05})
    verdict = judge(day, _window())
    assert not verdict["healthy"]
    assert verdict["lost"] == 1
    assert any("lost" in reason for reason in verdict["reasons"])


def test_errors_and_timeouts_over_the_threshold_make_the_window_unhealthy() -> None:
    day = _day()
    _requests(day, 998, failed=1)
    _requests(day, 0, failed=1, status=0)  # no answer in time
    verdict = judge(day, _window())
    assert verdict["errors"] == 2 and verdict["timeouts"] == 1
    assert not verdict["healthy"]


def test_any_error_fails_the_window_when_no_error_is_allowed() -> None:
    day = _day()
    _requests(day, 5000, failed=1)
    assert judge(day, _window())["healthy"]
    assert not judge(day, _window(), max_error_rate=0.0)["healthy"]


def test_a_send_that_was_not_acknowledged_is_an_error_not_a_delivery() -> None:
    day = _day()
    _requests(day, 10)
    day.ledger.sent["sdb-0-2"] = Sent(110.0, [1], "group", acknowledged=False)
    day.ledger.record("send", Answer(500, b"", 110.0, 0.02))
    verdict = judge(day, _window())
    assert verdict["messages_unacknowledged"] == 1 and verdict["deliveries_expected"] == 0
    assert not verdict["healthy"]
