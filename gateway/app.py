"""The gateway's Flask application: thin routes that parse, call one service, and map errors."""

from __future__ import annotations

import json
import logging
import time
from typing import Any, TypeVar

from flask import Flask, Response, g, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from gateway import openapi, schemas
from shared.auth import bearer, issue_token, verify_token
from shared.config import Settings
from shared.errors import AppError
from shared.rpc import RpcClient

M = TypeVar("M", bound=BaseModel)

REQUESTS = Counter("gateway_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("gateway_request_seconds", "HTTP request latency", ["method", "route"])

# Calls that need no token.
OPEN_ENDPOINTS = {"config", "dev_token", "openapi", "healthz", "readyz", "metrics"}
READY_SERVICES = ("directory", "conversations")


def error_response(exc: AppError) -> Response:
    response = jsonify({"error": exc.to_dict()})
    response.status_code = exc.status
    return response


def parse_body(model: type[M]) -> M:
    """The JSON body as `model`: `malformed_request` if unparseable, `validation_failed` if misshapen."""
    raw = request.get_data(cache=False)
    try:
        data = json.loads(raw) if raw else {}
    except (ValueError, UnicodeDecodeError):
        raise AppError("malformed_request", "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise AppError("malformed_request", "The request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise AppError("validation_failed", "Some fields are missing or wrong.", {"errors": errors}) from None


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    rpc = RpcClient(settings)
    app.extensions["rpc"] = rpc
    logging.basicConfig(level=settings.log_level)

    def call(service: str, method: str, params: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return rpc.call(service, method, params, caller=g.get("user_id"), **kwargs)

    @app.before_request
    def authenticate() -> None:
        g.started = time.perf_counter()
        if request.endpoint in OPEN_ENDPOINTS or request.endpoint is None:
            return
        identity = verify_token(settings, bearer(request.headers.get("Authorization")))
        g.user_id = identity.user_id

    @app.after_request
    def measure(response: Response) -> Response:
        route = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(request.method, route, response.status_code).inc()
        if "started" in g:
            LATENCY.labels(request.method, route).observe(time.perf_counter() - g.started)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(AppError)
    def on_app_error(exc: AppError) -> Response:
        return error_response(exc)

    @app.errorhandler(RequestEntityTooLarge)
    def on_too_large(exc: RequestEntityTooLarge) -> Response:
        return error_response(AppError("request_too_large", "The request is too large."))

    @app.errorhandler(HTTPException)
    def on_http_error(exc: HTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed", 400: "malformed_request"}.get(exc.code or 500, "internal")
        message = {404: "Nothing here.", 405: "This method is not allowed here."}.get(exc.code or 500, exc.description)
        response = error_response(AppError(code, message or "Request failed."))
        response.status_code = exc.code or 500
        return response

    @app.errorhandler(Exception)
    def on_unexpected(exc: Exception) -> Response:
        app.logger.exception("unhandled error")
        return error_response(AppError("internal", "Something went wrong."))

    # -- open ---------------------------------------------------------------------------

    @app.get("/healthz")
    def healthz() -> Any:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> Any:
        checks: dict[str, str] = {}
        for service in READY_SERVICES:
            try:
                rpc.call(service, "health.check", timeout=2.0)
                checks[service] = "ok"
            except AppError as exc:
                checks[service] = exc.code
        ready = all(v == "ok" for v in checks.values())
        return {"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)

    @app.get("/api/v1/openapi.json", endpoint="openapi")
    def openapi_document() -> Any:
        return openapi.document()

    @app.get("/api/v1/config")
    def config() -> Any:
        realtime = (
            settings.realtime_public_url or f"{request.scheme}://{request.host.split(':')[0]}:{settings.realtime_port}"
        )
        return {"realtime_url": realtime, "socketio_path": f"/{settings.socketio_path.strip('/')}"}

    @app.post("/api/v1/auth/dev-token")
    def dev_token() -> Any:
        if not settings.dev_login:
            raise AppError("not_found", "Nothing here.")
        body = parse_body(schemas.DevToken)
        users = rpc.call("directory", "users.get", {"ids": [body.user_id]})["users"]
        if not users:
            raise AppError("not_found", "No such user.")
        return {"token": issue_token(settings, body.user_id), "user": users[0]}

    # -- authenticated ------------------------------------------------------------------

    @app.get("/api/v1/me")
    def me() -> Any:
        users = call("directory", "users.get", {"ids": [g.user_id]})["users"]
        if not users:
            raise AppError("unauthenticated", "Your account is not in the roster.")
        unread = call("conversations", "unread.total")["unread_total"]
        return {**users[0], "unread_total": unread}

    @app.get("/api/v1/directory/search")
    def directory_search() -> Any:
        return call("directory", "directory.search", {"q": request.args.get("q", "")})

    @app.post("/api/v1/conversations")
    def create_conversation() -> Any:
        body = parse_body(schemas.NewConversation)
        return call("conversations", "conversations.create", body.model_dump()), 201

    @app.get("/api/v1/conversations")
    def list_conversations() -> Any:
        return call(
            "conversations",
            "conversations.list",
            {"cursor": request.args.get("cursor"), "limit": request.args.get("limit")},
        )

    @app.get("/api/v1/conversations/<conversation_id>")
    def get_conversation(conversation_id: str) -> Any:
        return call("conversations", "conversations.get", {"conversation_id": conversation_id})

    @app.get("/api/v1/conversations/<conversation_id>/messages")
    def list_messages(conversation_id: str) -> Any:
        return call(
            "conversations",
            "messages.list",
            {
                "conversation_id": conversation_id,
                "cursor": request.args.get("cursor"),
                "limit": request.args.get("limit"),
            },
        )

    @app.post("/api/v1/conversations/<conversation_id>/messages")
    def send_message(conversation_id: str) -> Any:
        body = parse_body(schemas.NewMessage)
        return call("conversations", "messages.send", {"conversation_id": conversation_id, **body.model_dump()}), 201

    return app
