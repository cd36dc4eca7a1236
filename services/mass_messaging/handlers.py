"""RPC entry points of the mass-messaging service, and its sweeper.

A request is checked (the directory says whether the caller may send to those organisations,
and how many people that is), stored as a queued job, handed to the Celery workers, and
answered at once. The sweeper hands a job to the workers again when it has not moved for a
while (a crash between storing and queueing it, or a task lost with its worker).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery

from services.mass_messaging import domain, jobs
from services.mass_messaging.worker import make_app
from shared.config import Settings
from shared.cursor import Cursors
from shared.db import transaction
from shared.rpc import Caller, Method, RpcClient, user_of
from shared.supervise import Periodic

log = logging.getLogger(__name__)
STALE_SECONDS = 60.0
SWEEP_EVERY_SECONDS = 15.0


def methods(settings: Settings) -> dict[str, Method]:
    url = settings.database_url("mass_messaging")
    cursors = Cursors(settings.cursor_secret)
    directory = RpcClient(settings)
    celery = make_app(settings)

    def create(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        body = domain.check_body(params.get("body"))
        roles = domain.check_roles(params.get("roles"))
        org_id, org_ids = domain.check_orgs(params.get("org_id"), params.get("org_ids"))
        authorised = directory.call(
            "directory", "mass.authorise", {"org_id": org_id, "org_ids": org_ids, "roles": roles}, caller=me
        )
        if not authorised["audience_size"]:
            raise domain.empty_audience()
        with transaction(url) as session:
            job = jobs.do_create(session, me, authorised, body)
        queue_plan(celery, job["id"])
        return job

    def listing(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        with transaction(url) as session:
            return jobs.list_jobs(session, cursors, me, params.get("cursor"), params.get("limit"))

    def get(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        with transaction(url) as session:
            return domain.job_view(jobs.access_job(session, me, params.get("job_id")))

    def cancel(caller: Caller | None, params: dict[str, Any]) -> dict[str, Any]:
        me = user_of(caller)
        with transaction(url) as session:
            return jobs.do_cancel(session, me, params.get("job_id"))

    return {
        "mass.create": create,
        "mass.list": listing,
        "mass.get": get,
        "mass.cancel": cancel,
    }


def queue_plan(celery: Celery, job_id: str) -> None:
    try:
        celery.send_task("mass.plan", args=[job_id])
    except Exception:  # noqa: BLE001  (the sweeper queues it again; the request has its job)
        log.exception("job %s waits for the sweeper", job_id)


class Sweeper(Periodic):
    """Hands jobs that stopped moving back to the workers (every task is safe to run twice)."""

    name = "mass-message sweeper"
    every = SWEEP_EVERY_SECONDS

    def __init__(self, settings: Settings) -> None:
        super().__init__(stall_seconds=settings.loop_stall_seconds)
        self.url = settings.database_url("mass_messaging")
        self.celery = make_app(settings)

    def work(self) -> list[str]:
        return self.sweep()

    def sweep(self) -> list[str]:
        with transaction(self.url) as session:
            stale = jobs.stale_jobs(session, STALE_SECONDS)
            for job_id in stale:
                jobs.touch(session, job_id)
        for job_id in stale:
            queue_plan(self.celery, job_id)
        return stale
