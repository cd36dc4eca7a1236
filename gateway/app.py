"""The gateway's Flask application: token checks, error mapping, metrics, and the route blueprints."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, jsonify, request
from prometheus_client import Counter, Histogram
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from gateway.routes import (
    admin,
    attachments,
    conversations,
    directory,
    mass,
    moderation,
    search,
    sync,
    system,
    web_client,
)
from gateway.web import RETRY_AFTER
from shared.auth import bearer, verify_token
from shared.config import Settings
from shared.errors import AppError
from shared.rpc import RpcClient

REQUESTS = Counter("gateway_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("gateway_request_seconds", "HTTP request latency", ["method", "route"])
BLUEPRINTS = (
    system.bp,
    directory.bp,
    conversations.bp,
    admin.bp,
    search.bp,
    sync.bp,
    attachments.bp,
    moderation.bp,
    mass.bp,
    web_client.bp,
)


def error_response(exc: AppError) -> Response:
    response = jsonify({"error": exc.to_dict()})
    response.status_code = exc.status
    if exc.status == 503:
        response.headers["Retry-After"] = RETRY_AFTER
    return response


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["settings"] = settings
    app.extensions["rpc"] = RpcClient(settings)
    logging.basicConfig(level=settings.log_level)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)

    @app.before_request
    def authenticate() -> None:
        g.started = time.perf_counter()
        view = app.view_functions.get(request.endpoint or "")
        # Unknown paths fall through to a uniform 404; open views need no token.
        if view is None or getattr(view, "public", False):
            return
        g.user_id = verify_token(settings, bearer(request.headers.get("Authorization"))).user_id

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
        status = exc.code or 500
        code = {404: "not_found", 405: "method_not_allowed", 400: "malformed_request"}.get(status, "internal")
        message = {404: "Nothing here.", 405: "This method is not allowed here."}.get(status, exc.description)
        response = error_response(AppError(code, message or "Request failed."))
        response.status_code = status
        return response

    @app.errorhandler(Exception)
    def on_unexpected(exc: Exception) -> Response:
        app.logger.exception("unhandled error")
        return error_response(AppError("internal", "Something went wrong."))

    return app
