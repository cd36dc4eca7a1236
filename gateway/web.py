"""What every route uses: parsing bodies, calling a service as the caller, marking open routes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, request
from pydantic import BaseModel, ValidationError

from shared.config import Settings
from shared.errors import AppError
from shared.rpc import RpcClient

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
