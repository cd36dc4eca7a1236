"""SIGKILL one process of the system under a steady load: the runner starts it again, as Kubernetes would,
and nothing acknowledged may be lost, stored twice or never pushed; sends are fast again within 2 s.

When the fault ends:
- a service (directory, conversations, sync, attachments, moderation, mass_messaging): when the
  restarted process is up, i.e. every queue it consumes (its RPC queue with all its threads, and
  its event queues) has its consumers again, seen on the broker itself;
- the mass-message worker: when the restarted worker consumes its Celery queue again; a mass
  message is being delivered while it dies, and must reach everyone once;
- a gateway worker (a child of the gunicorn master) and a realtime process: at the kill, since
  their siblings carry on (the other gunicorn worker takes the connections; listeners move to the
  other realtime process and catch up from /sync) while the runner or the master starts a new one.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.faults.conftest import Rig, mass_task_queue, steady, wait_until_up
from tests.faults.mass import MassJob
from tests.support.load import Load
from tests.support.waiting import wait_for

SERVICES = ("directory", "conversations", "sync", "attachments", "moderation", "mass_messaging")


@pytest.mark.parametrize("service", SERVICES)
def test_killing_a_service_process_loses_nothing_and_sends_recover_within_two_seconds(
    rig: Rig, load: Load, service: str
) -> None:
    job = None
    if service == "mass_messaging":
        # Its RPC and its relay die in the middle of a job: the job must still finish, its sender told.
        job = MassJob.queue(rig, org_id="org-school-2", roles=["student"], body="Fault drill: mass message.")
    steady()
    queues = rig.service_queues(service)
    rpc_queue = rig.settings.rpc_queue(service)
    old = rig.sys.stack.processes[service]
    started = time.monotonic()
    rig.kill(service)
    ended = wait_until_up(
        rig,
        queues,
        old_gone=lambda: (
            rig.sys.stack.processes[service] is not old and rig.consumers(rpc_queue) < rig.settings.rpc_threads
        ),
    )
    steady(5.0)
    report = load.report(f"kill {service}", [(started, ended)])
    problems = job.check() if job else []
    if job:
        job.close()
    extra = {"job_waited_s": job.waited_s} if job else {}
    rig.finish(f"kill {service}", report, problems, restarts=dict(rig.sys.stack.restarts), **extra)


def test_killing_a_gateway_worker_loses_nothing_and_sends_recover_within_two_seconds(rig: Rig, load: Load) -> None:
    steady()
    workers = rig.gateway_workers()
    assert len(workers) == rig.settings.gateway_workers, workers
    started = time.monotonic()
    os.kill(workers[0], signal.SIGKILL)
    ended = time.monotonic()
    steady(5.0)
    # gunicorn's master starts a new worker by itself; the master is not restarted.
    assert wait_for(lambda: len(rig.gateway_workers()) == rig.settings.gateway_workers, timeout=30)
    assert workers[0] not in rig.gateway_workers()
    report = load.report("kill gateway worker", [(started, ended)])
    rig.finish("kill gateway worker", report, [], gateway_workers_before=workers, after=rig.gateway_workers())


def test_killing_a_realtime_process_loses_nothing_its_listeners_move_and_catch_up(rig: Rig, load: Load) -> None:
    steady()
    old = rig.sys.stack.processes["realtime-1"]
    on_doomed = [p.student for p in load.pairs if p.listener.connected_to[-1] == rig.sys.realtime_urls[0]]
    assert on_doomed, "no listener is on the realtime process about to die"
    started = time.monotonic()
    rig.kill("realtime-1")
    ended = time.monotonic()
    steady(5.0)
    report = load.report("kill realtime-1", [(started, ended)])
    problems = []
    moved = [p.student for p in load.pairs if p.student in on_doomed and len(p.listener.connected_to) > 1]
    if len(moved) != len(on_doomed):
        problems.append(f"listeners that did not move off the dead process: {sorted(set(on_doomed) - set(moved))}")
    if not wait_for(lambda: rig.sys.stack.processes["realtime-1"] is not old, timeout=10):
        problems.append("the runner did not start realtime-1 again")
    rig.finish("kill realtime-1", report, problems, listeners_moved=len(moved))


def test_killing_the_mass_message_worker_mid_job_loses_nothing_and_delivers_the_job_once(rig: Rig, load: Load) -> None:
    queue = mass_task_queue(rig)
    job = MassJob.queue(rig, org_id="org-school-2", roles=["student"], body="Fault drill: worker killed.")
    try:
        assert wait_for(lambda: job.state()["delivered"] > 0, timeout=30), job.state()
        old = rig.sys.stack.processes["mass-worker-1"]
        started = time.monotonic()
        rig.kill("mass-worker-1")
        partial = job.state()
        ended = wait_until_up(
            rig,
            {queue: 1},
            old_gone=lambda: rig.sys.stack.processes["mass-worker-1"] is not old and rig.consumers(queue) == 0,
        )
        steady(5.0)
        report = load.report("kill mass-worker-1", [(started, ended)])
        problems = []
        if partial["state"] != "running" or partial["delivered"] >= partial["audience"]:
            problems.append(f"the job was not in the middle of delivery when its worker died: {partial}")
        problems += job.check()
        rig.finish("kill mass-worker-1", report, problems, job_when_killed=partial, job_waited_s=job.waited_s)
    finally:
        job.close()
