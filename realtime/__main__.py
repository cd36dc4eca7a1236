"""`python -m realtime`: serve Socket.IO on eventlet until SIGTERM or SIGINT."""

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

from realtime.server import create_server  # noqa: E402
from shared.config import Settings  # noqa: E402

log = logging.getLogger("realtime")

STOP_POLL_SECONDS = 0.2
STOP_TIMEOUT_SECONDS = 5.0


def main() -> int:
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if settings.realtime_async_mode != "eventlet":
        log.error(
            "python -m realtime serves with eventlet; REALTIME_ASYNC_MODE=%s needs another WSGI server",
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

    server = create_server(settings)
    listener = eventlet.listen((settings.realtime_host, settings.realtime_port))
    server.start()
    http = eventlet.spawn(eventlet.wsgi.server, listener, server.app, log_output=False, debug=False)
    log.info(
        "realtime: serving on %s:%d, consuming %s", settings.realtime_host, settings.realtime_port, server.feed.queue
    )

    while not stop_requested and not http.dead:
        eventlet.sleep(STOP_POLL_SECONDS)
    if not stop_requested:
        log.error("realtime: the HTTP server stopped on its own")
        http.wait()  # re-raises whatever ended it
        return 1

    log.info("realtime: stopping (signal %d)", stop_requested[0])
    server.stop(STOP_TIMEOUT_SECONDS)
    # Open sockets simply drop; clients reconnect to another process and catch up with /sync.
    http.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
