"""The Celery side of mass messaging: `python -m services.mass_messaging.worker` runs a worker.

Two tasks, both safe to run twice:
- `mass.plan(job_id)`: resolve the audience through the directory (page by page), fix it in
  chunks (the first plan wins), and queue a delivery per chunk still pending.
- `mass.deliver(job_id, index)`: hand one chunk to conversations (`mass.deliver`, keyed by job
  and recipient, so nobody gets it twice) and record it delivered once.

Reliability: a task is acknowledged only after it ran (`acks_late`), given back if its worker
dies (`reject_on_worker_lost`; with the broker's redelivery on a lost connection), and a worker
takes one task at a time (prefetch 1). A chunk takes well under a second, far inside RabbitMQ's
consumer timeout (30 minutes) and the task time limit (120 s). Start more workers to go faster.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from celery import Celery
from celery.app.amqp import AMQP
from kombu import Connection, Queue

from services.mass_messaging import domain, jobs
from shared.config import Settings
from shared.db import transaction
from shared.errors import AppError
from shared.rpc import RpcClient

log = logging.getLogger(__name__)
PAGE = 5_000
MAX_ATTEMPTS = 5


def task_queue(settings: Settings) -> str:
    return f"{settings.namespace}.mass_messaging.tasks"


class QuickConnection(Connection):
    """kombu's connection with the reconnect pace of the rest of the system (shared.supervise).

    Celery reconnects through `ensure_connection` with kombu's defaults (2 s, then 4, 6 ... up to
    30 s apart), so a worker would stay away for seconds after the broker is back; here the first
    retry is at once and they stay under a second apart.
    """

    def ensure_connection(self, *args: Any, **kwargs: Any) -> Connection:
        if len(args) <= 2:
            kwargs.setdefault("interval_start", 0)
            kwargs.setdefault("interval_step", 0.2)
            kwargs.setdefault("interval_max", 1.0)
        return super().ensure_connection(*args, **kwargs)


class Amqp(AMQP):
    Connection = QuickConnection


def make_app(settings: Settings) -> Celery:
    app = Celery("mass_messaging", broker=settings.amqp_url, set_as_current=False, amqp=Amqp)
    name = task_queue(settings)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=name,
        task_queues=[Queue(name, durable=True)],
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_time_limit=120,
        task_soft_time_limit=90,
        broker_transport_options={"confirm_publish": True},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        # No remote control: its mailbox queue is per node name, shared by every worker on a host
        # (and every system on a test machine), and nothing here uses it.
        worker_enable_remote_control=False,
    )
    runner = Runner(settings, app)
    app.task(name="mass.plan", bind=False)(runner.plan)
    app.task(name="mass.deliver", bind=False)(runner.deliver)
    return app


class Runner:
    """What the tasks do, with the settings and clients of this worker process."""

    def __init__(self, settings: Settings, app: Celery) -> None:
        self.settings = settings
        self.app = app
        self.url = settings.database_url("mass_messaging")
        self._rpc: RpcClient | None = None

    @property
    def rpc(self) -> RpcClient:
        if self._rpc is None:
            self._rpc = RpcClient(self.settings)
        return self._rpc

    def plan(self, job_id: str) -> None:
        with transaction(self.url) as session:
            job = jobs.load(session, job_id)
        if job is None or job.state not in domain.UNFINISHED:
            return
        if job.chunks is None:
            members = self.audience(job)
            receiving = [m["user_id"] for m in members if m["messaging_enabled"]]
            skipped = len(members) - len(receiving)
            chunked = domain.chunks(receiving, self.settings.mass_chunk_size)
        else:
            chunked, skipped = [], 0  # already planned: only queue what is pending
        with transaction(self.url) as session:
            pending = jobs.save_plan(session, job_id, chunked, skipped)
        # Spread the chunks out (MASS_RECIPIENTS_PER_SECOND): a worker holds the later ones until
        # their time, unacknowledged, so a worker that dies gives them back.
        interval = self.settings.mass_chunk_size / max(self.settings.mass_recipients_per_second, 1.0)
        for position, index in enumerate(pending):
            self.app.send_task("mass.deliver", args=[job_id, index], countdown=round(position * interval, 3))

    def audience(self, job: Any) -> list[dict[str, Any]]:
        members: list[dict[str, Any]] = []
        after = None
        while True:
            page = self.rpc.call(
                "directory",
                "mass.audience",
                {
                    "org_id": job.org_id,
                    "org_ids": list(job.org_ids),
                    "roles": list(job.roles),
                    "after": after,
                    "limit": PAGE,
                },
                caller=job.sender_id,
                timeout=60,
            )
            members += page["members"]
            after = page["next"]
            if not after:
                return members

    def deliver(self, job_id: str, index: int) -> None:
        with transaction(self.url) as session:
            found = jobs.chunk_to_deliver(session, job_id, index)
        if found is None:
            return
        job, recipients = found
        spec = {"job_id": job_id, "org_id": job.org_id, "org_name": job.org_name, "body": job.body}
        try:
            result = self.rpc.call(
                "conversations", "mass.deliver", {"job": spec, "recipient_ids": recipients}, timeout=60
            )
        except AppError as exc:
            log.warning("job %s chunk %s: %s", job_id, index, exc)
            with transaction(self.url) as session:
                attempts = jobs.attempts(session, job_id, index)
                if attempts >= MAX_ATTEMPTS:
                    jobs.finish_chunk(session, job_id, index, "failed")
                    return
            self.app.send_task("mass.deliver", args=[job_id, index], countdown=min(30, 2**attempts))
            return
        with transaction(self.url) as session:
            jobs.finish_chunk(session, job_id, index, "delivered", result["conversation_id"])


def main() -> None:
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s mass-worker %(levelname)s %(message)s")
    app = make_app(settings)
    concurrency = sys.argv[1] if len(sys.argv) > 1 else str(settings.mass_worker_threads)
    app.worker_main(
        [
            "worker",
            "--pool=threads",
            f"--concurrency={concurrency}",
            f"--queues={task_queue(settings)}",
            f"--loglevel={settings.log_level}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--hostname=mass-{settings.namespace}-{os.getpid()}@%h",
        ]
    )


if __name__ == "__main__":
    main()
