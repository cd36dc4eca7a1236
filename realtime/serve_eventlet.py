"""Serve Socket.IO on eventlet until SIGTERM or SIGINT (`python -m realtime` with REALTIME_ASYNC_MODE=eventlet)."""

import warnings

# eventlet's maintenance mode is a known, recorded choice (ARCHITECTURE.md, Concurrency);
# its import-time deprecation banner would only be noise on every start.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

# Before anything else imports socket, threading or time: kombu and python-socketio
# must get the green versions.
eventlet.monkey_patch()

import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from types import FrameType  # noqa: E402

import eventlet.wsgi  # noqa: E402

from realtime.server import Limits, allow_open_files, create_server, log_serving  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.supervise import PROCESS  # noqa: E402

log = logging.getLogger("realtime")

STOP_POLL_SECONDS = 0.2
STOP_TIMEOUT_SECONDS = 5.0


class _Protocol(eventlet.wsgi.HttpProtocol):
    """eventlet's HTTP handler with small socket buffers: a websocket keeps its handler (and
    these buffers) for its whole life but reads and writes the raw socket after the upgrade,
    so the default 8 KB + 16 KB buffers would only cost memory on every connection."""

    rbufsize = 2048
    wbufsize = 2048


def main() -> int:
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if settings.realtime_async_mode != "eventlet":
        log.error(
            "python -m realtime serves REALTIME_ASYNC_MODE=eventlet or aiohttp, not %s",
            settings.realtime_async_mode,
        )
        return 2

    stop_requested: list[int] = []

    def request_stop(signum: int, frame: FrameType | None) -> None:
        # A handler may run inside eventlet's hub, where switching greenlets is unsafe:
        # only record the request; the main green thread polls for it.
        stop_requested.append(signum)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    allow_open_files(settings.realtime_max_connections + 256)
    limits = Limits.from_settings(settings)
    server = create_server(settings, limits)
    # Every websocket holds one of the WSGI server's slots for its life (eventlet's default
    # is 1,024), and a reconnect storm needs a deep accept queue.
    listener = eventlet.listen((settings.realtime_host, settings.realtime_port), backlog=2048)
    server.start()
    http = eventlet.spawn(
        eventlet.wsgi.server,
        listener,
        server.app,
        max_size=settings.realtime_max_connections,
        protocol=_Protocol,
        log_output=False,
        debug=False,
    )
    log_serving(server.feed.queue, settings.realtime_host, settings.realtime_port, "eventlet", limits)

    while not stop_requested and not http.dead and PROCESS.fatal_reason is None:
        eventlet.sleep(STOP_POLL_SECONDS)
    # A loop (the feed) that could not be kept running ends the process non-zero, to be started again.
    fatal = PROCESS.fatal_reason is not None
    if not stop_requested and not fatal:
        log.error("realtime: the HTTP server stopped on its own")
        http.wait()  # re-raises whatever ended it
        return 1

    log.info("realtime: stopping (%s)", PROCESS.fatal_reason if fatal else f"signal {stop_requested[0]}")
    server.stop(STOP_TIMEOUT_SECONDS)
    # Open sockets simply drop; clients reconnect to another process and catch up with /sync.
    http.kill()
    return 1 if fatal else 0


if __name__ == "__main__":
    sys.exit(main())
