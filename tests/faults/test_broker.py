"""The broker goes away under a steady load: restarted or killed while every relay holds rows, cut off
for 10 s, black-holed for 10 s. Nothing acknowledged may be lost, stored twice or never pushed, what
was made while the broker could not take it must reach the right people afterwards, and sends must
be fast again within 2 s of the broker coming back.

Rows waiting in every outbox, and sure to be: the proxy in front of the broker diverts every publish
to the system's events exchange into an exchange of the test's own, where only an exclusive
`x-max-length: 0, x-overflow: reject-publish` queue is bound. The broker nacks each of them and
routes it nowhere, so each relay keeps its rows (and retries them), while RPC (the default
exchange) and Celery's queue work as ever. Then each service that has events to tell makes a
state change: messages (conversations, and the load), a report (moderation), a messaging block or
its lifting (directory), a mass message (mass_messaging). The attachments service records no
events (services/attachments writes no outbox row), so it has no rows to hold. The test checks by
SQL that every other outbox holds rows, then restarts (or kills) the broker with them waiting. See
tests.support.amqp_divert for why not a rejecting queue bound to the events exchange itself.
Three restarts (two kills) in one test, so that a relay which survives one by luck fails here;
the test goes on to the next restart only while nothing was lost at the last one.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from bench.latency import teacher_student_pairs
from shared.auth import issue_token
from tests.faults.conftest import DISTRICT_ADMIN, Rig, insist, steady
from tests.faults.mass import MassJob
from tests.support.load import PAIRS, Listener, Load

OUTBOX_SERVICES = ("directory", "conversations", "moderation", "mass_messaging")
CHECK_SECONDS = 15.0  # after the broker is back, for what was made during the block to arrive
CUT_SECONDS = 10.0


class Blockade:
    """Publishes to the events exchange nacked by the broker and routed nowhere, until `lift()`."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.conn = rig.broker()  # directly to the node: the proxy is what diverts
        channel = self.conn.channel()
        self.exchange = f"{rig.settings.namespace}.faults.diverted.{uuid.uuid4().hex[:6]}"
        channel.exchange_declare(self.exchange, "fanout", durable=False, auto_delete=True)
        queue = channel.queue_declare(
            "", exclusive=True, arguments={"x-max-length": 0, "x-overflow": "reject-publish"}
        ).queue
        channel.queue_bind(queue, self.exchange, "")
        self.diverted_before = rig.diverter.diverted
        rig.diverter.divert(rig.settings.exchange, self.exchange)

    @property
    def diverted(self) -> int:
        return self.rig.diverter.diverted - self.diverted_before

    def lift(self) -> None:
        self.rig.diverter.stop()
        with contextlib.suppress(Exception):  # the broker may have closed it already
            self.conn.close()


@dataclass
class Witnesses:
    """People who must hear of what is made during each block, and how to make it."""

    rig: Rig
    reporter: str
    reported_conversation: str
    reported_teacher: str
    staff: str
    staff_listener: Listener
    blocked_student: str
    blocked_conversation: str
    block_id: str | None = None
    reports: list[str] = field(default_factory=list)

    @classmethod
    def gather(cls, rig: Rig) -> Witnesses:
        (report_teacher, reporter), (block_teacher, blocked) = teacher_student_pairs(PAIRS + 2)[PAIRS:]
        lift_blocks_on(rig, blocked)  # a test that failed half-way may have left one
        reported = start_conversation(rig, report_teacher, reporter)
        http, params = rig.session(reporter), {"message_id": reported["message"]["id"]}
        offered = insist(lambda: http.get(f"{rig.sys.api}/reports/recipients", params=params, timeout=15))
        assert offered.status_code == 200, offered.text
        staff = [s["user_id"] for s in offered.json()["items"]]
        admins = [s for s in staff if s.startswith("user-a-")]
        chosen = (admins or staff)[0]
        token = issue_token(rig.settings, chosen)
        listener = Listener(rig.sys.realtime_urls, rig.sys.api, lambda: token, socketio_path=rig.settings.socketio_path)
        listener.start()
        blocked_conversation = start_conversation(rig, block_teacher, blocked)["conversation"]["id"]
        return cls(
            rig,
            reporter,
            reported["conversation"]["id"],
            report_teacher,
            chosen,
            listener,
            blocked,
            blocked_conversation,
        )

    def report_a_message(self) -> str:
        api = self.rig.sys.api
        teacher, reporter = self.rig.session(self.reported_teacher), self.rig.session(self.reporter)
        body = {"body": f"to be reported {uuid.uuid4().hex[:6]}", "client_id": uuid.uuid4().hex}
        sent = insist(
            lambda: teacher.post(f"{api}/conversations/{self.reported_conversation}/messages", json=body, timeout=15)
        )
        assert sent.status_code == 201, sent.text
        claim = {"message_id": sent.json()["id"], "to_user_id": self.staff, "reason": "Fault drill"}
        report = insist(lambda: reporter.post(f"{api}/reports", json=claim, timeout=15))
        assert report.status_code == 201, report.text
        self.reports.append(report.json()["id"])
        return report.json()["id"]

    def toggle_block(self) -> bool:
        """Block the student's messaging, or lift the block; True when it is now blocked."""
        admin = self.rig.session(DISTRICT_ADMIN)
        if self.block_id is None:
            target = {"user_id": self.blocked_student}
            made = insist(lambda: admin.post(f"{self.rig.sys.api}/admin/messaging-blocks", json=target, timeout=15))
            assert made.status_code in (200, 201), made.text
            self.block_id = made.json()["id"]
            return True
        url = f"{self.rig.sys.api}/admin/messaging-blocks/{self.block_id}"
        lifted = insist(lambda: admin.delete(url, timeout=15))
        assert lifted.status_code in (204, 404), lifted.text  # 404: a retry after a delete that did happen
        self.block_id = None
        return False

    def staff_heard_of(self, report_id: str) -> bool:
        with self.staff_listener._lock:
            return any(
                name == "report.created" and data["report"]["id"] == report_id
                for name, data in self.staff_listener.applied
            )

    def student_may_send(self) -> bool | None:
        return student_may_send(self.rig, self.blocked_student, self.blocked_conversation)

    def close(self) -> None:
        if self.block_id is not None:
            with contextlib.suppress(Exception):
                self.toggle_block()
        self.staff_listener.close()


def lift_blocks_on(rig: Rig, user_id: str) -> None:
    admin = rig.session(DISTRICT_ADMIN)
    listed = insist(lambda: admin.get(f"{rig.sys.api}/admin/messaging-blocks", timeout=15))
    assert listed.status_code == 200, listed.text
    for block in listed.json()["items"]:
        if block["target_kind"] == "user" and block["target_id"] == user_id:
            url = f"{rig.sys.api}/admin/messaging-blocks/{block['id']}"
            lifted = insist(lambda url=url: admin.delete(url, timeout=15))
            assert lifted.status_code in (204, 404), lifted.text


def student_may_send(rig: Rig, user_id: str, conversation_id: str) -> bool | None:
    """Whether the conversations service lets `user_id` send (None: it could not tell)."""
    try:
        response = rig.session(user_id).post(
            f"{rig.sys.api}/conversations/{conversation_id}/messages",
            json={"body": "can I still write?", "client_id": uuid.uuid4().hex},
            timeout=5,
        )
    except requests.RequestException:
        return None
    if response.status_code == 201:
        return True
    if response.status_code == 422 and response.json()["error"]["code"] == "messaging_disabled":
        return False
    return None


def start_conversation(rig: Rig, teacher: str, student: str) -> dict[str, Any]:
    """A 1:1 of the teacher and the student (a block lifted just before may take a moment to arrive)."""
    deadline = time.monotonic() + 20
    http = rig.session(teacher)
    body = {"recipients": [{"type": "user", "id": student}], "body": "Hello", "client_id": uuid.uuid4().hex}
    while True:
        response = insist(lambda: http.post(f"{rig.sys.api}/conversations", json=body, timeout=15))
        if response.status_code == 201 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert response.status_code == 201, response.text
    return response.json()


def outboxes(rig: Rig) -> dict[str, int]:
    return {service: rig.outbox_rows(service) for service in OUTBOX_SERVICES}


def newest_rows(rig: Rig) -> dict[str, int]:
    """The id of the newest row in each outbox (0 when empty)."""
    return {service: rig.outbox_newest(service) for service in OUTBOX_SERVICES}


def still_waiting(rig: Rig, newest: dict[str, int]) -> dict[str, int]:
    """How many of the rows that were waiting at the restart (ids up to `newest`) each outbox still holds."""
    return {service: rig.outbox_rows(service, up_to=newest[service]) for service in OUTBOX_SERVICES}


def poll(check: Callable[[], bool], timeout: float, interval: float = 0.3) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def restart_with_rows_waiting(rig: Rig, load: Load, *, kill: bool, cycles: int, name: str) -> None:
    witnesses = Witnesses.gather(rig)
    windows: list[tuple[float, float]] = []
    problems: list[str] = []
    figures: list[dict[str, Any]] = []
    try:
        steady()
        for cycle in range(1, cycles + 1):
            blockade = Blockade(rig)
            try:
                report_id = witnesses.report_a_message()
                blocked = witnesses.toggle_block()
                job = MassJob.queue(rig, org_id="org-school-2", roles=["admin"], body=f"Drill {cycle}")
                # Every relay must be holding rows when the broker goes: wait until each outbox has some.
                poll(lambda: all(outboxes(rig).values()), timeout=10, interval=0.1)
                time.sleep(1.0)  # a little more for every relay to try, be refused, and hold on
                waiting, newest = outboxes(rig), newest_rows(rig)
                assert all(waiting.values()), f"restart {cycle}: an outbox holds no rows to relay: {waiting}"
                if blockade.diverted == 0:
                    problems.append(f"restart {cycle}: no relay tried to publish during the block (are they alive?)")
                started = time.monotonic()
                if kill:
                    rig.rabbit.kill()
                else:
                    rig.rabbit.stop()
            finally:
                # The broker is down (or the test failed): nothing to divert until it is back.
                blockade.lift()
            rig.rabbit.start()
            ended = time.monotonic()
            windows.append((started, ended))
            figures.append(
                {
                    "outbox_rows_at_restart": waiting,
                    "publishes_refused_during_block": blockade.diverted,
                    "broker_down_s": round(ended - started, 2),
                }
            )

            # What was made during the block reaches the right people now.
            def arrived(report_id: str = report_id, blocked: bool = blocked, newest: dict[str, int] = newest) -> bool:
                return (
                    not any(still_waiting(rig, newest).values())
                    and witnesses.staff_heard_of(report_id)
                    and witnesses.student_may_send() is (not blocked)
                )

            poll(arrived, timeout=CHECK_SECONDS)
            left = still_waiting(rig, newest)
            if any(left.values()):
                problems.append(
                    f"restart {cycle}: rows waiting at the restart still there {CHECK_SECONDS:.0f}s after: {left}"
                )
            if not witnesses.staff_heard_of(report_id):
                problems.append(f"restart {cycle}: {witnesses.staff} never heard of report {report_id}")
            if witnesses.student_may_send() is blocked:
                problems.append(
                    f"restart {cycle}: the messaging {'block' if blocked else 'unblock'} of "
                    f"{witnesses.blocked_student} never reached the conversations service"
                )
            problems += [f"restart {cycle}: {p}" for p in job.check(timeout=10.0)]
            job.close()
            if problems:
                break  # this restart lost something already: the figures say which; more would only wait
            steady()
    except AssertionError as exc:
        problems.append(f"the test could not go on: {exc}")
    finally:
        witnesses.close()
    report = load.report(name, windows)
    rig.finish(name, report, problems, cycles=figures)


def test_a_broker_restart_with_rows_in_every_outbox_loses_nothing_three_times_over(rig: Rig, load: Load) -> None:
    restart_with_rows_waiting(rig, load, kill=False, cycles=3, name="broker restart x3 with rows waiting")


def test_a_broker_killed_with_rows_in_every_outbox_loses_nothing(rig: Rig, load: Load) -> None:
    restart_with_rows_waiting(rig, load, kill=True, cycles=2, name="broker SIGKILL x2 with rows waiting")


@pytest.mark.parametrize("mode", ["cut", "blackhole"])
def test_ten_seconds_without_the_broker_loses_nothing_and_sends_recover_within_two_seconds(
    rig: Rig, load: Load, mode: str
) -> None:
    """`cut`: every connection dropped, new ones refused; `blackhole`: connections kept, no byte through.

    At 25 messages a second some are nearly always on their way out of the conversations outbox
    when the network goes; a short block before makes sure of it, so the relay meets the fault
    holding rows every time rather than by chance.
    """
    assert rig.proxy is not None
    steady()
    blockade = Blockade(rig)
    try:
        poll(lambda: rig.outbox_rows("conversations") > 0, timeout=5, interval=0.1)
        time.sleep(1.0)
        waiting = rig.outbox_rows("conversations")
        started = time.monotonic()
        rig.proxy.cut() if mode == "cut" else rig.proxy.blackhole()
    finally:
        blockade.lift()
    time.sleep(CUT_SECONDS)
    rig.proxy.restore()
    ended = time.monotonic()
    steady(5.0)
    name = f"broker network {mode} {CUT_SECONDS:.0f}s"
    report = load.report(name, [(started, ended)])
    problems = [] if waiting else ["the conversations outbox held no rows when the network went"]
    rig.finish(name, report, problems, conversations_outbox_rows_at_fault=waiting)
