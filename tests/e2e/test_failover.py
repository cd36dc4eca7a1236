"""Two realtime processes: each event reaches a client once, on whichever process holds it,
and when one process dies mid-stream its clients move to the other and lose nothing."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from shared.config import Settings
from tests.e2e.conftest import System, running_system
from tests.support.failover import FailoverClient
from tests.support.waiting import wait_for

TEACHER = "user-t-001"
STUDENTS = ("user-s-0001", "user-s-0013", "user-s-0019", "user-s-0024")
MESSAGES = 60


@pytest.fixture(scope="module")
def pair(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    with running_system(base_settings, tmp_path_factory.mktemp("logs"), realtime=2) as running:
        yield running


def _client(system: System, user: str, first: int) -> FailoverClient:
    urls = system.realtime_urls[first:] + system.realtime_urls[:first]
    token = system.token(user)
    return FailoverClient(urls, system.api, lambda: token, socketio_path=system.settings.socketio_path).start()


def _group(system: System) -> str:
    response = system.session(TEACHER).post(
        f"{system.api}/conversations",
        json={"recipients": [{"type": "user", "id": s} for s in STUDENTS], "body": "Start", "mode": "group"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()["conversation"]["id"]


def test_clients_on_either_process_get_each_event_once(pair: System) -> None:
    cid = _group(pair)
    clients = [_client(pair, user, i % 2) for i, user in enumerate(STUDENTS)]
    try:
        teacher = pair.session(TEACHER)
        sent = [
            teacher.post(f"{pair.api}/conversations/{cid}/messages", json={"body": f"m{i}"}, timeout=10).json()["id"]
            for i in range(10)
        ]
        for client in clients:
            assert wait_for(lambda client=client: set(sent) <= set(client.message_ids()))
        time.sleep(0.5)  # a duplicate would arrive right behind
        for client in clients:
            counts = Counter(client.message_ids())
            assert all(counts[m] == 1 for m in sent) and max(counts.values()) == 1
        assert {c.connected_to[0] for c in clients} == set(pair.realtime_urls)
    finally:
        for client in clients:
            client.close()


def test_when_a_realtime_process_dies_mid_stream_its_clients_move_to_the_other_and_lose_nothing(
    pair: System,
) -> None:
    cid = _group(pair)
    doomed, survivor = pair.realtime_urls
    on_doomed = [_client(pair, user, 0) for user in STUDENTS[:2]]
    on_survivor = [_client(pair, user, 1) for user in STUDENTS[2:]]
    teacher = pair.session(TEACHER)
    sent: list[str] = []

    def stream() -> None:
        for i in range(MESSAGES):
            response = teacher.post(f"{pair.api}/conversations/{cid}/messages", json={"body": f"s{i}"}, timeout=10)
            sent.append(response.json()["id"])
            time.sleep(0.02)

    sender = threading.Thread(target=stream)
    try:
        sender.start()
        assert wait_for(lambda: len(sent) >= MESSAGES // 3)
        pair.stack.processes["realtime-1"].send_signal(signal.SIGKILL)
        sender.join(60)
        assert len(sent) == MESSAGES
        for client in on_doomed + on_survivor:
            assert wait_for(lambda client=client: set(sent) <= set(client.message_ids()), timeout=30), (
                f"{len(set(sent) - set(client.message_ids()))} missing"
            )
            assert Counter(client.message_ids()).most_common(1)[0][1] == 1, "a message applied twice"
        for client in on_doomed:
            assert client.connected_to == [doomed, survivor]
        for client in on_survivor:
            assert client.connected_to == [survivor]
    finally:
        sender.join(60)
        for client in on_doomed + on_survivor:
            client.close()
