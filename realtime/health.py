"""`/healthz` and `/readyz` beside the Socket.IO endpoint, as a bare WSGI app."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _json(start_response: Callable[..., Any], status: str, body: dict[str, Any]) -> list[bytes]:
    raw = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(raw)))])
    return [raw]


def health_app(is_ready: Callable[[], bool]) -> WSGIApp:
    """Liveness is "this process answers"; readiness is "its consumer is consuming"."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return _json(start_response, "200 OK", {"status": "ok"})
        if path == "/readyz":
            if is_ready():
                return _json(start_response, "200 OK", {"status": "ok"})
            return _json(start_response, "503 Service Unavailable", {"status": "unavailable"})
        error = {"code": "not_found", "message": "No such resource.", "details": {}}
        return _json(start_response, "404 Not Found", {"error": error})

    return app
