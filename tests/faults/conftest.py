"""Fault fixtures: a broker and a database of the suite's own, the whole system on them, a load through it.

- `rabbit` (session): a RabbitMQ node from Debian's package on free ports (tests.support.rabbit_node),
  deleted at the end of the session;
- `postgres` (session): a PostgreSQL 15 cluster on a free port (tests.support.pg_cluster), dropped at
  the end of the session (and at exit, should the session die);
- `rig` (module): the system as `make run` starts it (two realtime processes), its AMQP_URL through a
  TcpProxy in front of the node (to cut it, black-hole it, or divert publishes), POSTGRES_URL on the
  cluster. Before each test the rig makes sure the broker, the database and the proxy are as they
  should be and that the system still works (ready, and a message sent is pushed); when a fault
  left it broken for good (a relay thread dead, say), it starts a fresh system, so one test's
  damage is never blamed on the next. The test that did the damage has failed already.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import amqp
import pytest
import requests
from sqlalchemy import text

from bench.measure import process_table
from deploy.local import DEFINITIONS
from services.mass_messaging.worker import task_queue
from shared.auth import issue_token
from shared.config import Settings
from shared.db import transaction
from tests.e2e.conftest import System, running_system
from tests.support.amqp_divert import PublishDiverter
from tests.support.load import Listener, Load, Report, record
from tests.support.pg_cluster import PgCluster
from tests.support.rabbit_node import RabbitNode
from tests.support.tcpproxy import TcpProxy
from tests.support.waiting import wait_for

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "faults.json"
DISTRICT_ADMIN = "user-a-000"  # governs every school: may block anyone
MASS_SENDER = "user-a-002"  # an administrator of org-school-2, granted mass messaging below
STEADY_SECONDS = 3.0
AFTER_SECONDS = 5.0
MAX_RECOVERY_SECONDS = 2.0


@pytest.fixture(scope="session")
def rabbit() -> Iterator[RabbitNode]:
    node = RabbitNode()
    try:
        node.start()
        yield node
    finally:
        node.delete()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PgCluster]:
    cluster = PgCluster()
    try:
        cluster.create()
        yield cluster
    finally:
        cluster.drop()


@dataclass
class Rig:
    """The system under test and everything a test can break under it."""

    base_settings: Settings
    rabbit: RabbitNode
    postgres: PgCluster
    log_root: Path
    diverter: PublishDiverter = field(default_factory=PublishDiverter)
    proxy: TcpProxy | None = None
    system: System | None = None
    replaced: list[str] = field(default_factory=list)  # why each earlier system was given up
    _exit: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    # The system -------------------------------------------------------------------------------

    def start_system(self) -> System:
        if self.proxy is None:
            self.proxy = TcpProxy("127.0.0.1", self.rabbit.port, client_filter=self.diverter.stream)
        log_dir = self.log_root / f"system-{len(self.replaced) + 1}"
        log_dir.mkdir(parents=True, exist_ok=True)
        self._exit = contextlib.ExitStack()
        self.system = self._exit.enter_context(
            running_system(
                self.base_settings,
                log_dir,
                realtime=2,
                amqp_url=f"amqp://guest:guest@127.0.0.1:{self.proxy.port}//",
                postgres_url=self.postgres.url,
                # Small chunks at 100 recipients a second: a mass message lasts long enough to kill its worker.
                mass_chunk_size=20,
                mass_recipients_per_second=100.0,
            )
        )
        granted = self.session(DISTRICT_ADMIN).post(
            f"{self.system.api}/admin/privileges",
            json={"user_id": MASS_SENDER, "privilege": "mass_messaging"},
            timeout=15,
        )
        assert granted.status_code == 200, granted.text
        return self.system

    def stop_system(self) -> None:
        exit_stack, self._exit = self._exit, contextlib.ExitStack()
        self.system = None
        exit_stack.close()

    @property
    def sys(self) -> System:
        assert self.system is not None
        return self.system

    @property
    def settings(self) -> Settings:
        return self.sys.settings

    @property
    def logs(self) -> Path:
        return self.sys.log_dir

    def restore_infrastructure(self) -> None:
        """Whatever a test did or failed to undo: the broker up, the database up, the proxy passing all."""
        self.diverter.stop()
        if self.proxy is not None:
            self.proxy.restore()
        if not self.rabbit.running:
            self.rabbit.start()
        self.postgres.ensure_running()

    def healthy(self) -> str | None:
        """None when the system is ready and pushes a fresh message; else what is wrong."""
        ready = wait_for(lambda: self.ready(), timeout=20)
        if not ready:
            return "GET /readyz did not answer 200 within 20 s"
        if not self.fresh_send_delivered(timeout=10):
            return "a message sent was not pushed to its recipient within 10 s"
        return None

    def ensure_healthy(self) -> None:
        self.restore_infrastructure()
        if self.system is None:
            self.start_system()
            return
        problem = self.healthy()
        if problem is not None:
            self.replaced.append(problem)
            self.stop_system()
            self.start_system()

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.sys.api.rsplit('/api/', 1)[0]}/readyz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def fresh_send_delivered(
        self, *, teacher: str = "user-t-001", student: str = "user-s-0001", timeout: float
    ) -> bool:
        """A new message from a teacher to a student, sent once the fault is over, is pushed to the student."""
        token = issue_token(self.settings, student)
        listener = Listener(
            self.sys.realtime_urls, self.sys.api, lambda: token, socketio_path=self.settings.socketio_path
        )
        try:
            listener.start()
            sent = self.session(teacher).post(
                f"{self.sys.api}/conversations",
                json={"recipients": [{"type": "user", "id": student}], "body": f"probe {uuid.uuid4().hex}"},
                timeout=10,
            )
            if sent.status_code != 201:
                return False
            message_id = sent.json()["message"]["id"]
            return wait_for(lambda: message_id in listener.message_ids(), timeout=timeout)
        except Exception:  # noqa: BLE001  (any failure here means "not healthy", which is the answer)
            return False
        finally:
            listener.close()

    def session(self, user_id: str) -> requests.Session:
        """An HTTP session as `user_id`, its token minted here: no call to the gateway a fault may be hurting."""
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {issue_token(self.settings, user_id)}"
        return http

    def load(self, **kwargs: Any) -> Load:
        return Load(self.settings, self.sys.api, self.sys.realtime_urls, **kwargs)

    # The broker, seen directly (not through the proxy a fault may have cut) ------------------------

    def broker(self) -> amqp.Connection:
        conn = amqp.Connection(f"127.0.0.1:{self.rabbit.port}", userid="guest", password="guest", connect_timeout=5)
        conn.connect()
        return conn

    def consumers(self, queue: str) -> int:
        """How many consumers `queue` has now (0 when it does not exist)."""
        try:
            with contextlib.closing(self.broker()) as conn:
                return conn.channel().queue_declare(queue, passive=True).consumer_count
        except (amqp.exceptions.NotFound, OSError):
            return 0

    def service_queues(self, name: str) -> dict[str, int]:
        """Every queue a service's process consumes, with the consumers it has when that process is up."""
        definition, _ = DEFINITIONS[name]
        queues = {self.settings.rpc_queue(name): self.settings.rpc_threads}
        queues.update({q.name: 1 for q in definition.queues(self.settings)})
        return queues

    # The databases ------------------------------------------------------------------------------

    def outbox_rows(self, service: str, *, up_to: int | None = None) -> int:
        """Rows waiting in the service's outbox (only those with ids up to `up_to`, when given)."""
        with transaction(self.settings.database_url(service)) as session:
            if up_to is None:
                return session.execute(text("SELECT count(*) FROM outbox")).scalar_one()
            return session.execute(text("SELECT count(*) FROM outbox WHERE id <= :n"), {"n": up_to}).scalar_one()

    def outbox_newest(self, service: str) -> int:
        with transaction(self.settings.database_url(service)) as session:
            return session.execute(text("SELECT coalesce(max(id), 0) FROM outbox")).scalar_one()

    # Processes --------------------------------------------------------------------------------

    def kill(self, name: str) -> Any:
        proc = self.sys.stack.processes[name]
        os.kill(proc.pid, signal.SIGKILL)
        return proc

    def gateway_workers(self) -> list[int]:
        master = self.sys.stack.processes["gateway"].pid
        return children_of(master)

    # Figures ------------------------------------------------------------------------------------

    def finish(self, name: str, report: Report, problems: list[str], **extra: Any) -> None:
        """Record the figures, check the system is ready and delivers again, and fail with every problem found."""
        if not wait_for(self.ready, timeout=10):
            problems.append("GET /readyz is not 200 after the fault")
        if not self.fresh_send_delivered(timeout=10):
            problems.append("a fresh message sent after the fault was not pushed to its recipient within 10 s")
        problems = report.problems(max_recovery=MAX_RECOVERY_SECONDS) + problems
        record(
            ARTIFACTS,
            name,
            report,
            problems=problems,
            log_dir=str(self.logs),
            systems_replaced_before=list(self.replaced),
            rabbit_start_s=[round(s, 2) for s in self.rabbit.start_seconds],
            rabbit_stop_s=[round(s, 2) for s in self.rabbit.stop_seconds],
            postgres_restart_s=[round(s, 2) for s in self.postgres.restart_seconds],
            **extra,
        )
        summary = {k: v for k, v in report.to_dict().items() if k != "details"}
        assert not problems, f"{name}: {problems}\n{summary}\ndetails: {report.details}\nlogs: {self.logs}"


def insist(send: Callable[[], requests.Response], *, timeout: float = 20.0) -> requests.Response:
    """What a real client does with a 5xx or a broken connection: try again (for up to `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = send()
            if response.status_code < 500 or time.monotonic() > deadline:
                return response
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.3)


def children_of(pid: int) -> list[int]:
    return sorted(child for child, (parent, _, _) in process_table().items() if parent == pid)


@pytest.fixture(scope="module")
def rig_module(
    base_settings: Settings, rabbit: RabbitNode, postgres: PgCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rig]:
    rig = Rig(base_settings, rabbit, postgres, tmp_path_factory.mktemp("fault-logs"))
    try:
        rig.start_system()
        yield rig
    finally:
        rig.restore_infrastructure()
        rig.stop_system()
        if rig.proxy is not None:
            rig.proxy.close()


@pytest.fixture
def rig(rig_module: Rig) -> Iterator[Rig]:
    rig_module.ensure_healthy()
    yield rig_module
    # Undo what a failed test may have left: a cut proxy, a diversion, a stopped broker.
    rig_module.restore_infrastructure()


@pytest.fixture
def load(rig: Rig) -> Iterator[Load]:
    running = rig.load().start()
    try:
        yield running
    finally:
        running.close()


def steady(seconds: float = STEADY_SECONDS) -> None:
    time.sleep(seconds)


def wait_until_up(rig: Rig, queues: dict[str, int], *, old_gone: Callable[[], bool], timeout: float = 60.0) -> float:
    """The moment every queue has its consumers again, once the killed process's consumers have left the broker."""
    if not wait_for(old_gone, timeout=10):
        raise AssertionError(f"the killed process's consumers stayed on {sorted(queues)}: the fault never began")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(rig.consumers(q) >= n for q, n in queues.items()):
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"the restarted process did not consume {sorted(queues)} within {timeout}s")


def mass_task_queue(rig: Rig) -> str:
    return task_queue(rig.settings)
