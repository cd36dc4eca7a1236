"""PostgreSQL restarts under a steady load (`pg_ctlcluster restart -m fast`: every connection is cut,
the server stops and starts again). Nothing acknowledged may be lost, stored twice or never pushed,
and sends must be fast again within 2 s of the database accepting connections again."""

from __future__ import annotations

import time

from tests.faults.conftest import Rig, steady
from tests.support.load import Load


def test_a_database_restart_loses_nothing_and_sends_recover_within_two_seconds(rig: Rig, load: Load) -> None:
    steady()
    started = time.monotonic()
    took = rig.postgres.restart()
    ended = time.monotonic()
    steady(5.0)
    report = load.report("postgres restart", [(started, ended)])
    rig.finish("postgres restart", report, [], restart_s=round(took, 2))
