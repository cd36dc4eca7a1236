"""A PostgreSQL 15 cluster of a test's own (Debian's pg_createcluster), restarted at will, dropped after.

The cluster listens on 127.0.0.1 on a free port with trust authentication, owned by the
`postgres` user as Debian's clusters are (pg_ctlcluster switches to it when run as root).
`fsync` is off: a fast shutdown still writes everything out, so restarts lose nothing, and
the suite does not wait on the disk. Measured on the 2-core CI machine: creating and starting
~2.5 s, `restart -m fast` ~2.3 s (most of it pg_ctl polling for the new postmaster).
"""

from __future__ import annotations

import atexit
import subprocess
import time
from pathlib import Path

import psycopg

from tests.support.waiting import free_port

VERSION = "15"


class PgCluster:
    def __init__(self) -> None:
        self.port = free_port()
        self.name = f"faults{self.port}"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"
        self.restart_seconds: list[float] = []
        self.created = False

    def _run(self, *argv: str, timeout: float = 60.0) -> str:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {result.stderr or result.stdout}")
        return result.stdout

    def create(self) -> PgCluster:
        self._run("pg_createcluster", VERSION, self.name, "-p", str(self.port), "--", "--auth=trust")
        # Debian's postgresql.conf includes conf.d: our settings go there, quoted as the file wants them.
        Path(f"/etc/postgresql/{VERSION}/{self.name}/conf.d/faults.conf").write_text(
            "listen_addresses = '127.0.0.1'\n"
            # Six services with pools of up to 20 each, the relays, consumers, and the suite itself.
            "max_connections = 300\n"
            "fsync = off\n"
            "full_page_writes = off\n"
        )
        self.created = True
        # A failed or interrupted run must not leave a cluster behind: atexit as well as the fixture.
        atexit.register(self.drop)
        self._run("pg_ctlcluster", VERSION, self.name, "start")
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", connect_timeout=1) as c:
                    c.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def restart(self) -> float:
        """`pg_ctlcluster restart -m fast`: every connection is cut, the server stops and starts. Seconds taken."""
        started = time.monotonic()
        self._run("pg_ctlcluster", VERSION, self.name, "restart", "-m", "fast")
        self.wait_ready()
        took = time.monotonic() - started
        self.restart_seconds.append(took)
        return took

    def ensure_running(self) -> None:
        status = subprocess.run(["pg_ctlcluster", VERSION, self.name, "status"], capture_output=True, timeout=30)
        if status.returncode != 0:
            self._run("pg_ctlcluster", VERSION, self.name, "start")
        self.wait_ready()

    def drop(self) -> None:
        if not self.created:
            return
        self.created = False
        subprocess.run(["pg_dropcluster", VERSION, self.name, "--stop"], capture_output=True, timeout=60)
