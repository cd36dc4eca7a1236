"""RPC over a real RabbitMQ: results, structured errors, deadlines, late replies, a service that is down."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from shared.config import Settings
from shared.errors import AppError
from shared.rpc import Caller, RpcClient, RpcServer


def _methods(log: list[str]) -> dict[str, Any]:
    def echo(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        return {"caller": caller.user_id if caller else None, "params": params}

    def refuse(caller: Caller | None, params: dict[str, Any]) -> None:
        raise AppError("forbidden", "Not you.", {"why": "test"})

    def crash(caller: Caller | None, params: dict[str, Any]) -> None:
        raise ZeroDivisionError("bug")

    def slow(caller: Caller | None, params: dict[str, Any]) -> str:
        log.append(f"start {params['n']}")
        time.sleep(params["seconds"])
        log.append(f"done {params['n']}")
        return f"slow {params['n']}"

    return {"echo": echo, "refuse": refuse, "crash": crash, "slow": slow}


@pytest.fixture
def server(settings: Settings):
    log: list[str] = []
    srv = RpcServer(settings, "demo", _methods(log), threads=2).start()
    srv.log = log
    yield srv
    srv.stop()


def test_a_call_returns_the_result_with_the_callers_identity(settings: Settings, server) -> None:
    client = RpcClient(settings)
    assert client.call("demo", "echo", {"a": 1}, caller="user-1") == {"caller": "user-1", "params": {"a": 1}}
    client.close()


def test_a_refusal_arrives_as_the_same_structured_error(settings: Settings, server) -> None:
    client = RpcClient(settings)
    with pytest.raises(AppError) as info:
        client.call("demo", "refuse")
    assert (info.value.code, info.value.message, info.value.details) == ("forbidden", "Not you.", {"why": "test"})
    client.close()


def test_a_bug_in_a_method_answers_internal_and_the_server_keeps_serving(settings: Settings, server) -> None:
    client = RpcClient(settings)
    with pytest.raises(AppError) as info:
        client.call("demo", "crash")
    assert info.value.code == "internal"
    assert client.call("demo", "echo", {"still": "up"})["params"] == {"still": "up"}
    client.close()


def test_an_unknown_method_is_not_found(settings: Settings, server) -> None:
    client = RpcClient(settings)
    with pytest.raises(AppError) as info:
        client.call("demo", "nope")
    assert info.value.code == "not_found"
    client.close()


def test_a_call_past_its_deadline_is_unavailable_and_its_late_reply_is_never_taken_for_another(
    settings: Settings, server
) -> None:
    client = RpcClient(settings)
    started = time.monotonic()
    with pytest.raises(AppError) as info:
        client.call("demo", "slow", {"n": 1, "seconds": 1.0}, timeout=0.3)
    assert info.value.code == "unavailable"
    assert time.monotonic() - started < 1.0
    time.sleep(1.0)  # the late reply to call 1 arrives now
    assert client.call("demo", "slow", {"n": 2, "seconds": 0}) == "slow 2"
    client.close()


def test_one_slow_service_does_not_make_calls_to_the_others_fail(settings: Settings, server) -> None:
    """An unanswered call says the service was slow or the broker silent; until a probe finds the
    broker silent, the next call (to any service) goes through."""
    client = RpcClient(settings)
    with pytest.raises(AppError) as info:
        client.call("demo", "slow", {"n": 1, "seconds": 0.6}, timeout=0.2)
    assert info.value.message == "The service did not answer in time. Try again."
    # At once, while the probe is still out: the broker answers, so nothing fails fast.
    assert client.call("demo", "echo", {"n": 2}, caller="user-1")["params"] == {"n": 2}
    client.close()


def test_a_request_whose_deadline_passed_in_the_queue_is_not_executed(settings: Settings) -> None:
    log: list[str] = []
    client = RpcClient(settings)
    server = RpcServer(settings, "demo", _methods(log), threads=1).start()
    try:
        # Occupy the only worker, then queue a request that expires while it waits.
        busy = threading.Thread(target=client.call, args=("demo", "slow", {"n": 1, "seconds": 1.0}))
        busy.start()
        time.sleep(0.1)
        with pytest.raises(AppError):
            RpcClient(settings).call("demo", "slow", {"n": 2, "seconds": 0}, timeout=0.3)
        busy.join()
        time.sleep(0.3)
        assert log == ["start 1", "done 1"]
    finally:
        server.stop()
        client.close()


def test_a_call_to_a_service_that_is_down_is_unavailable_in_bounded_time(settings: Settings) -> None:
    client = RpcClient(settings)
    started = time.monotonic()
    with pytest.raises(AppError) as info:
        client.call("nobody-home", "echo", timeout=0.5)
    assert info.value.code == "unavailable"
    assert time.monotonic() - started < 2.0
    client.close()


def test_many_threads_share_one_client_without_mixing_replies(settings: Settings, server) -> None:
    client = RpcClient(settings)
    results: dict[int, Any] = {}

    def work(i: int) -> None:
        results[i] = client.call("demo", "echo", {"i": i})["params"]["i"]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: i for i in range(40)}
    client.close()
