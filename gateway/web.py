"""What every route uses: parsing bodies, calling a service as the caller, marking open routes."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, request
from pydantic import BaseModel, ValidationError

from shared.config import Settings
from shared.errors import AppError
from shared.rpc import RpcClient

# What a 503 tells a client to wait before retrying (seconds): the services come back within about a
# second of the broker or the database (shared.supervise), and a retry is safe with a `client_id`.
RETRY_AFTER = "1"

M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])


def public(view: F) -> F:
    """Mark a view that needs no token."""
    view.public = True  # type: ignore[attr-defined]
    return view


def settings() -> Settings:
    return current_app.extensions["settings"]


def rpc() -> RpcClient:
    return current_app.extensions["rpc"]


def call(service: str, method: str, params: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """Call a service on behalf of the signed-in user (or nobody, on open routes)."""
    return rpc().call(service, method, params, caller=g.get("user_id"), **kwargs)


def query(*names: str) -> dict[str, str | None]:
    return {name: request.args.get(name) for name in names}


def takes(model: type[BaseModel]) -> Callable[[F], F]:
    """The view receives its JSON body parsed as `model` (keyword `body`); the OpenAPI document shows it."""

    def wrap(view: F) -> F:
        @functools.wraps(view)
        def run(*args: Any, **kwargs: Any) -> Any:
            return view(*args, body=parse_body(model), **kwargs)

        run.body_model = model  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return wrap


def reads(*names: str) -> Callable[[F], F]:
    """The view receives these query parameters (keyword `params`); the OpenAPI document lists them."""

    def wrap(view: F) -> F:
        @functools.wraps(view)
        def run(*args: Any, **kwargs: Any) -> Any:
            return view(*args, params=query(*names), **kwargs)

        run.query_names = names  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return wrap


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
