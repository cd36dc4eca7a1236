"""Serve Socket.IO on asyncio (aiohttp) until SIGTERM or SIGINT (`python -m realtime` with
REALTIME_ASYNC_MODE=aiohttp). Nothing is monkey-patched: the bus consumer runs in a plain thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiohttp import web

from realtime.async_server import create_async_server
from realtime.server import Limits, allow_open_files, log_serving
from shared.config import Settings
from shared.supervise import PROCESS

log = logging.getLogger("realtime")

STOP_POLL_SECONDS = 0.2
STOP_TIMEOUT_SECONDS = 5.0
# Open websockets are not waited for at a stop: they drop, and clients reconnect elsewhere.
HTTP_SHUTDOWN_SECONDS = 0.5


async def serve(settings: Settings) -> int:
    loop = asyncio.get_running_loop()
    stop_requested: list[int] = []
    stopping = asyncio.Event()

    def request_stop(signum: int) -> None:
        stop_requested.append(signum)
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, request_stop, signum)

    limits = Limits.from_settings(settings)
    server = create_async_server(settings, loop, limits)
    runner = web.AppRunner(server.app, access_log=None, handle_signals=False, shutdown_timeout=HTTP_SHUTDOWN_SECONDS)
    await runner.setup()
    # A reconnect storm needs a deep accept queue.
    site = web.TCPSite(runner, settings.realtime_host, settings.realtime_port, backlog=2048)
    await site.start()
    server.start()
    log_serving(server.feed.queue, settings.realtime_host, settings.realtime_port, "aiohttp", limits)

    while not stopping.is_set() and PROCESS.fatal_reason is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), STOP_POLL_SECONDS)
    # A loop (the feed) that could not be kept running ends the process non-zero, to be started again.
    fatal = PROCESS.fatal_reason is not None
    log.info("realtime: stopping (%s)", PROCESS.fatal_reason if fatal else f"signal {stop_requested[0]}")
    await server.stop(STOP_TIMEOUT_SECONDS)
    # Open sockets simply drop; clients reconnect to another process and catch up with /sync.
    await runner.cleanup()
    return 1 if fatal else 0


def main() -> int:
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if settings.realtime_async_mode != "aiohttp":
        log.error("realtime.serve_aiohttp serves REALTIME_ASYNC_MODE=aiohttp, not %s", settings.realtime_async_mode)
        return 2
    allow_open_files(settings.realtime_max_connections + 256)
    return asyncio.run(serve(settings))
