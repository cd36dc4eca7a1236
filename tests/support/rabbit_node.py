"""A RabbitMQ node of a test's own, from Debian's package: stopped, killed and started again at will.

The node runs as the current user with everything in one temporary directory: its own node
name (`faults-<port>@localhost`), AMQP and distribution ports, Mnesia and log directories,
an Erlang cookie in `HOME` (so `rabbitmqctl -n` reaches it and nothing else's cookie is
touched), an empty plugin list (no management plugin: it starts in a few seconds) and a
config file of its own (the machine's /etc/rabbitmq files name the shared node and its port).
Starting it again on the same directory keeps durable queues and persistent messages, as a
restarted broker in production does.

Measured on the 2-core CI machine: a first start 3.4-5.1 s to AMQP, a start on existing data
~2 s idle and ~5 s beside the running system under load, a graceful stop ~1.1 s, SIGKILL at once.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import amqp

from tests.support.waiting import free_port

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


def _distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        # The node also listens on port + 20000 by default and rabbitmqctl on its own ports: keep clear of both.
        if port not in ports and port + 20000 < 65536:
            ports.append(port)
    return ports


class RabbitNode:
    """One broker node. `start()`, `stop()` (graceful), `kill()` (SIGKILL the VM), `restart()`, `delete()`."""

    def __init__(self, base_dir: Path | None = None) -> None:
        self.dir = Path(base_dir or tempfile.mkdtemp(prefix="faults-rabbit-"))
        self.port, self.dist_port = _distinct_free_ports(2)
        self.node = f"faults-{self.port}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.process: subprocess.Popen[bytes] | None = None
        # Seconds each start took until AMQP answered, and each stop until the VM was gone.
        self.start_seconds: list[float] = []
        self.stop_seconds: list[float] = []
        self._prepare()
        # A session that dies before its fixtures' finalizers run must not leave a broker behind.
        atexit.register(self.delete)

    def _prepare(self) -> None:
        (self.dir / "log").mkdir(parents=True, exist_ok=True)
        cookie = self.dir / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(16).upper())
            cookie.chmod(0o400)
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("")
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            # Fault tests fill no disks: the default 50 MB free-space alarm could only block publishers spuriously.
            "disk_free_limit.absolute = 1MB\n"
        )

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        env.update(
            {
                # The Erlang cookie is read from $HOME by the node and by rabbitmqctl alike.
                "HOME": str(self.dir),
                "RABBITMQ_NODENAME": self.node,
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
                "RABBITMQ_LOG_BASE": str(self.dir / "log"),
                "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
                "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
                "RABBITMQ_PID_FILE": str(self.dir / "pid"),
                # Distribution only on loopback, like the machine's own node.
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
                "ERL_EPMD_ADDRESS": "127.0.0.1",
                # The script then execs the VM instead of wrapping it: our Popen is the beam itself,
                # so SIGKILL hits the broker and not a shell in front of it.
                "RUNNING_UNDER_SYSTEMD": "1",
            }
        )
        return env

    # Life -----------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 60.0) -> float:
        """Start the node (on its existing data, if any) and wait until AMQP accepts a login; the seconds it took."""
        if self.running:
            return 0.0
        started = time.monotonic()
        out = open(self.dir / "log" / "stdout.log", "ab")  # noqa: SIM115  (the child keeps its own copy)
        try:
            self.process = subprocess.Popen(
                [str(RABBITMQ_BIN / "rabbitmq-server")],
                env=self.env(),
                cwd=self.dir,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            out.close()
        self.wait_ready(timeout)
        took = time.monotonic() - started
        self.start_seconds.append(took)
        return took

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"rabbitmq node {self.node} exited with {self.process.returncode}: {self.log_tail()}"
                )
            try:
                conn = amqp.Connection(f"127.0.0.1:{self.port}", userid="guest", password="guest", connect_timeout=1)
                conn.connect()
                conn.close()
                return
            except Exception:  # noqa: BLE001  (not up yet: refused, reset mid-handshake, or still booting)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"rabbitmq node {self.node} did not accept AMQP in {timeout}s") from None
                time.sleep(0.05)

    def stop(self, timeout: float = 30.0) -> float:
        """Graceful: SIGTERM makes the Erlang VM run RabbitMQ's orderly shutdown. The seconds it took."""
        if not self.running:
            return 0.0
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._reap_group()
        took = time.monotonic() - started
        self.stop_seconds.append(took)
        return took

    def kill(self) -> None:
        """SIGKILL the VM: no shutdown at all, as when its machine or container dies."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._reap_group()

    def _reap_group(self) -> None:
        # erl_child_setup and the disk monitor shell follow the VM out; make sure of it.
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def restart(self, *, kill: bool = False) -> float:
        """Stop (or kill) and start again on the same data; the seconds until AMQP answered again."""
        started = time.monotonic()
        if kill:
            self.kill()
        else:
            self.stop()
        self.start()
        return time.monotonic() - started

    def delete(self) -> None:
        """Stop for good and remove every file of the node."""
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    # Inspection -------------------------------------------------------------------------------

    def ctl(self, *args: str, timeout: float = 30.0) -> str:
        """`rabbitmqctl -n <node> ...` (the package's own script, not /usr/sbin's wrapper that switches user)."""
        result = subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {result.stderr or result.stdout}")
        return result.stdout

    def log_tail(self, lines: int = 20) -> str:
        files = sorted((self.dir / "log").glob("*.log"))
        return "\n".join(f"{f.name}: " + "\n".join(f.read_text(errors="replace").splitlines()[-lines:]) for f in files)
