"""Run the whole system on one machine against the RabbitMQ and PostgreSQL it finds.

python -m deploy.local setup     create databases, migrate, declare queues, load the demo roster
python -m deploy.local run       setup, then start every process until Ctrl-C
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from kombu import Connection
from sqlalchemy import text

from services import attachments, conversations, directory, mass_messaging, moderation, sync
from services.mass_messaging.worker import task_queue as mass_task_queue
from shared.auth import issue_token
from shared.bus import declare_consumer_queue
from shared.config import Settings
from shared.db import migrate, transaction
from shared.service import ServiceDefinition

ROOT = Path(__file__).resolve().parent.parent
DEFINITIONS: dict[str, tuple[ServiceDefinition, Path]] = {
    "directory": (directory.DEFINITION, directory.MIGRATIONS),
    "conversations": (conversations.DEFINITION, conversations.MIGRATIONS),
    "sync": (sync.DEFINITION, sync.MIGRATIONS),
    "attachments": (attachments.DEFINITION, attachments.MIGRATIONS),
    "moderation": (moderation.DEFINITION, moderation.MIGRATIONS),
    "mass_messaging": (mass_messaging.DEFINITION, mass_messaging.MIGRATIONS),
}
DEMO_ACCOUNTS = {"teacher": "user-t-001", "student": "user-s-0001", "admin": "user-a-001"}


def declare_topology(settings: Settings) -> None:
    """Declare every consumer queue before anything publishes, so no early event goes unrouted."""
    with Connection(settings.amqp_url) as conn:
        channel = conn.channel()
        for definition, _ in DEFINITIONS.values():
            for queue in definition.queues(settings):
                declare_consumer_queue(channel, settings, queue)


def delete_topology(settings: Settings) -> None:
    """Remove a namespace's queues and exchanges (benchmarks and tests clean up after themselves)."""
    with Connection(settings.amqp_url) as conn:
        channel = conn.channel()
        for name, (definition, _) in DEFINITIONS.items():
            channel.queue_delete(settings.rpc_queue(name))
            for queue in definition.queues(settings):
                channel.queue_delete(queue.name)
                channel.queue_delete(f"{queue.name}.dead")
        channel.exchange_delete(settings.exchange)
        channel.exchange_delete(settings.dead_letter_exchange)
        # Celery's task queue for mass messages, and the exchange of the same name it routes through.
        channel.queue_delete(mass_task_queue(settings))
        channel.exchange_delete(mass_task_queue(settings))


def load_demo_roster(settings: Settings) -> bool:
    """Generate and import the demo roster when the directory holds no users; True when loaded."""
    from services.directory.handlers import import_roster
    from services.directory.roster.generate import demo_roster_files, zip_files

    url = settings.database_url("directory")
    with transaction(url) as session:
        if session.execute(text("SELECT 1 FROM users LIMIT 1")).first() is not None:
            return False
    import_roster(url, zip_files(demo_roster_files()))
    return True


def setup(settings: Settings, *, demo: bool = True) -> None:
    """Create and migrate every database, declare the queues, and load the demo roster if asked."""
    for name, (_, migrations) in DEFINITIONS.items():
        migrate(settings.database_url(name), migrations)
    declare_topology(settings)
    if demo and load_demo_roster(settings):
        print("Loaded the demo roster.")


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process see `settings`."""
    env = {
        "IM_ENV": settings.env,
        "AMQP_URL": settings.amqp_url,
        "IM_NAMESPACE": settings.namespace,
        "POSTGRES_URL": settings.postgres_url,
        "DB_PREFIX": settings.db_prefix,
        "JWT_SECRET": settings.jwt_secret,
        "CURSOR_SECRET": settings.cursor_secret,
        "DEV_LOGIN": "true" if settings.dev_login else "false",
        "GATEWAY_HOST": settings.gateway_host,
        "GATEWAY_PORT": str(settings.gateway_port),
        "GATEWAY_WORKERS": str(settings.gateway_workers),
        "GATEWAY_THREADS": str(settings.gateway_threads),
        "REALTIME_HOST": settings.realtime_host,
        "REALTIME_PORT": str(settings.realtime_port),
        "REALTIME_PUBLIC_URL": settings.realtime_public_url,
        "REALTIME_ASYNC_MODE": settings.realtime_async_mode,
        "BLOB_STORE": settings.blob_store,
        "BLOB_DIR": str(settings.blob_dir),
        "S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "S3_BUCKET": settings.s3_bucket,
        "S3_REGION": settings.s3_region,
        "RPC_TIMEOUT_SECONDS": str(settings.rpc_timeout_seconds),
        "RPC_THREADS": str(settings.rpc_threads),
        "LOG_LEVEL": settings.log_level,
        "MASS_WORKER_THREADS": str(settings.mass_worker_threads),
        "MASS_CHUNK_SIZE": str(settings.mass_chunk_size),
        "MASS_RECIPIENTS_PER_SECOND": str(settings.mass_recipients_per_second),
        "LOOP_STALL_SECONDS": str(settings.loop_stall_seconds),
        "OUTBOX_STALE_SECONDS": str(settings.outbox_stale_seconds),
        "HEALTH_HOST": settings.health_host,
        "HEALTH_PORT": "0",
    }
    env.update({f"{s.upper()}_DATABASE_URL": u for s, u in settings.database_urls.items()})
    return env


# gunicorn reads a request body of known length by copying what is left of each 1 MiB read;
# glibc hands those buffers back to the system and takes fresh pages for the next, so a 20 MB
# upload costs ~20,000 page faults. Keeping freed memory in the process (64 MiB thresholds)
# makes uploads ~40% cheaper for ~13 MB more resident memory per worker.
GATEWAY_MALLOC = {"MALLOC_TRIM_THRESHOLD_": str(64 << 20), "MALLOC_MMAP_THRESHOLD_": str(64 << 20)}


def commands(
    settings: Settings, *, realtime_ports: list[int] | None = None
) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Every process of the system: name -> (argv, extra environment)."""
    py = sys.executable
    # With HEALTH_PORT set, each service answers /healthz and /readyz on its own port from there up.
    procs: dict[str, tuple[list[str], dict[str, str]]] = {
        name: (
            [py, "-m", f"services.{name}"],
            {"HEALTH_PORT": str(settings.health_port + i)} if settings.health_port else {},
        )
        for i, name in enumerate(DEFINITIONS)
    }
    procs["gateway"] = (
        [
            py,
            "-m",
            "gunicorn",
            "-w",
            str(settings.gateway_workers),
            # More than one thread makes gunicorn use its gthread workers (one thread: sync workers).
            "--threads",
            str(settings.gateway_threads),
            "-b",
            f"{settings.gateway_host}:{settings.gateway_port}",
            "--timeout",
            # A worker streams a whole upload (up to 10 files of 20 MB) before it answers.
            "120",
            "--graceful-timeout",
            "5",
            "--log-level",
            "warning",
            "gateway.app:create_app()",
        ],
        GATEWAY_MALLOC,
    )
    # Celery workers for mass messages: start more of them (anywhere) to deliver faster.
    for i in range(settings.mass_workers):
        procs[f"mass-worker-{i + 1}"] = ([py, "-m", "services.mass_messaging.worker"], {})
    for i, port in enumerate(realtime_ports or [settings.realtime_port]):
        procs[f"realtime-{i + 1}"] = ([py, "-m", "realtime"], {"REALTIME_PORT": str(port)})
    return procs


@dataclass
class Stack:
    """The running processes of one system, kept running as a real deployment keeps them.

    A process that exits without being asked to (a crash, a kill, a loop that could not be kept
    running) is started again, after a pause that grows while it keeps failing at once: what
    compose's `restart: always` and Kubernetes do.
    """

    settings: Settings
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # How many times each process was started again after it exited on its own.
    restarts: dict[str, int] = field(default_factory=dict)
    restart: bool = True

    RESTART_PAUSE = 0.2
    RESTART_PAUSE_MAX = 5.0
    # A process that ran this long before exiting is started again at once.
    HEALTHY_RUN_SECONDS = 10.0

    def __post_init__(self) -> None:
        self._specs: dict[str, tuple[list[str], dict[str, str], Path | None]] = {}
        self._started_at: dict[str, float] = {}
        self._pause: dict[str, float] = {}
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def start(self, *, realtime_ports: list[int] | None = None, log_dir: Path | None = None) -> Stack:
        base_env = {**os.environ, **settings_env(self.settings), "PYTHONUNBUFFERED": "1"}
        for name, (argv, extra) in commands(self.settings, realtime_ports=realtime_ports).items():
            log_file = log_dir / f"{name}.log" if log_dir else None
            self._specs[name] = (argv, {**base_env, **extra}, log_file)
            self._launch(name)
        if self.restart:
            self._watcher = threading.Thread(target=self._watch, name="stack-watcher", daemon=True)
            self._watcher.start()
        return self

    def _launch(self, name: str) -> None:
        argv, env, log_file = self._specs[name]
        out: IO[bytes] | None = open(log_file, "ab") if log_file else None  # noqa: SIM115
        try:
            self.processes[name] = subprocess.Popen(
                argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT if out else None
            )
        finally:
            if out is not None:
                out.close()  # the child holds its own copy
        self._started_at[name] = time.monotonic()

    def _watch(self) -> None:
        while not self._stopping.wait(0.1):
            for name in list(self.processes):
                with self._lock:
                    proc = self.processes[name]
                    if self._stopping.is_set() or proc.poll() is None:
                        continue
                    ran = time.monotonic() - self._started_at[name]
                    pause = 0.0 if ran >= self.HEALTHY_RUN_SECONDS else self._pause.get(name, self.RESTART_PAUSE)
                    self._pause[name] = min(max(pause, self.RESTART_PAUSE) * 2, self.RESTART_PAUSE_MAX)
                    print(
                        f"deploy.local: {name} exited with {proc.returncode}; starting it again"
                        + (f" in {pause:.1f}s" if pause else ""),
                        file=sys.stderr,
                        flush=True,
                    )
                if pause and self._stopping.wait(pause):
                    return
                with self._lock:
                    if self._stopping.is_set() or self.processes[name] is not proc:
                        continue  # stopping, or someone replaced it meanwhile
                    self.restarts[name] = self.restarts.get(name, 0) + 1
                    self._launch(name)

    def wait_ready(self, urls: list[str], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for url in urls:
            while True:
                self._check_starts()
                try:
                    with urllib.request.urlopen(url, timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{url} did not become ready")
                time.sleep(0.2)

    def _check_starts(self) -> None:
        """Refuse to wait for a system whose processes cannot start (a wrong setting, a missing database)."""
        for name, proc in self.processes.items():
            failed = self.restarts.get(name, 0) >= 3 or (not self.restart and proc.poll() is not None)
            if failed:
                raise RuntimeError(f"{name} keeps exiting (last code {proc.returncode})")

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            procs = list(self.processes.values())
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._watcher is not None:
            self._watcher.join(timeout=2)


def main() -> None:
    parser = argparse.ArgumentParser(prog="deploy.local")
    sub = parser.add_subparsers(dest="command", required=True)
    setup_cmd = sub.add_parser("setup", help="create databases, migrate, declare queues, load the demo roster")
    run = sub.add_parser("run", help="setup, then run every process until Ctrl-C")
    run.add_argument("--realtime", type=int, default=2, help="how many realtime processes (ports count up)")
    for command in (setup_cmd, run):
        command.add_argument(
            "--no-demo", action="store_true", help="do not load the demo roster into an empty directory"
        )
    args = parser.parse_args()
    settings = Settings.from_env()
    setup(settings, demo=not args.no_demo)
    if args.command == "setup":
        return
    ports = [settings.realtime_port + i for i in range(args.realtime)]
    if not settings.realtime_public_url:
        # Clients learn every realtime process from GET /api/v1/config and move on when one goes.
        urls = ",".join(f"http://{settings.realtime_host}:{p}" for p in ports)
        settings = dataclasses.replace(settings, realtime_public_url=urls)
    stack = Stack(settings).start(realtime_ports=ports)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        gateway = f"http://{settings.gateway_host}:{settings.gateway_port}"
        stack.wait_ready([f"{gateway}/readyz"] + [f"http://{settings.realtime_host}:{p}/readyz" for p in ports])
        print(f"\nGateway:  {gateway}/   (API {gateway}/api/v1, OpenAPI {gateway}/api/v1/openapi.json)")
        for port in ports:
            print(f"Realtime: http://{settings.realtime_host}:{port}/{settings.socketio_path}")
        if settings.dev_login:
            for role, user_id in DEMO_ACCOUNTS.items():
                print(f"Demo {role} {user_id}: {issue_token(settings, user_id)}")
        print("\nCtrl-C stops everything.")
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
