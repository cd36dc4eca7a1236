"""Open routes: health, readiness, metrics, the OpenAPI document, client config, development sign-in."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway import openapi, schemas
from gateway.web import RETRY_AFTER, public, rpc, settings, takes
from shared.auth import issue_token
from shared.errors import AppError

bp = Blueprint("system", __name__)
READY_SERVICES = ("directory", "conversations", "sync", "attachments", "moderation", "mass_messaging")


@bp.get("/healthz")
@public
def healthz() -> Any:
    return {"status": "ok"}


@bp.get("/readyz")
@public
def readyz() -> Any:
    checks: dict[str, str] = {}
    for service in READY_SERVICES:
        try:
            rpc().call(service, "health.check", timeout=2.0)
            checks[service] = "ok"
        except AppError as exc:
            checks[service] = exc.code
    ready = all(v == "ok" for v in checks.values())
    headers = {} if ready else {"Retry-After": RETRY_AFTER}
    return {"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503, headers


@bp.get("/metrics")
@public
def metrics() -> Response:
    return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)


@bp.get("/api/v1/openapi.json")
@public
def openapi_document() -> Any:
    """This document."""
    return openapi.document(current_app)


@bp.get("/api/v1/config")
@public
def config() -> Any:
    """Where clients find the realtime servers: `realtime_urls` in the order to try them (a client
    that loses its connection moves on to the next), `realtime_url` the first of them."""
    s = settings()
    urls = [u.strip() for u in s.realtime_public_url.split(",") if u.strip()]
    if not urls:
        urls = [f"{request.scheme}://{request.host.split(':')[0]}:{s.realtime_port}"]
    return {"realtime_url": urls[0], "realtime_urls": urls, "socketio_path": f"/{s.socketio_path.strip('/')}"}


@bp.post("/api/v1/auth/dev-token")
@public
@takes(schemas.DevToken)
def dev_token(body: schemas.DevToken) -> Any:
    """Development sign-in: a token for a roster user (only where development sign-in is on)."""
    if not settings().dev_login:
        raise AppError("not_found", "Nothing here.")
    users = rpc().call("directory", "users.get", {"ids": [body.user_id]})["users"]
    if not users:
        raise AppError("not_found", "No such user.")
    return {"token": issue_token(settings(), body.user_id), "user": users[0]}
