"""`/healthz` and `/readyz` for every process, as a bare WSGI app (and a tiny server for services).

Liveness (`/healthz`) is "this process answers and has not given up"; readiness (`/readyz`) is
"every loop of it serves, and what it owns is not falling behind" (the report says which part
fails). Realtime serves them beside Socket.IO; a service process on `HEALTH_PORT`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from shared.supervise import PROCESS

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Readiness = Callable[[], tuple[bool, dict[str, Any]]]


def _json(start_response: Callable[..., Any], status: str, body: dict[str, Any]) -> list[bytes]:
    raw = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(raw)))])
    return [raw]


def loops_ready() -> tuple[bool, dict[str, Any]]:
    """Readiness from this process's supervised loops alone."""
    return PROCESS.ready(), PROCESS.report()


def health_app(readiness: Readiness = loops_ready) -> WSGIApp:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            if PROCESS.fatal_reason is not None:
                return _json(start_response, "503 Service Unavailable", {"status": "stopping"})
            return _json(start_response, "200 OK", {"status": "ok"})
        if path == "/readyz":
            ready, report = readiness()
            if ready:
                return _json(start_response, "200 OK", {"status": "ok", **report})
            return _json(start_response, "503 Service Unavailable", {"status": "unavailable", **report})
        error = {"code": "not_found", "message": "No such resource.", "details": {}}
        return _json(start_response, "404 Not Found", {"error": error})

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class's name)
        pass  # probes every few seconds would drown the log


def serve_health(host: str, port: int, app: WSGIApp) -> WSGIServer:
    """Serve `app` on `port` from a daemon thread (probes are few and quick: one thread is plenty)."""
    server = make_server(host, port, app, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    log.info("health on %s:%d", host, port)
    return server
