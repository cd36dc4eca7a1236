"""The OpenAPI 3 document, built from the routes themselves: paths, summaries, bodies, query parameters."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from pydantic import BaseModel

from shared.errors import STATUS_BY_CODE

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "enum": sorted(STATUS_BY_CODE)},
                "message": {"type": "string", "description": "Text a person may be shown."},
                "details": {"type": "object"},
            },
        }
    },
}
_ARGUMENT = re.compile(r"<(?:(?P<converter>[^:<>]+):)?(?P<name>\w+)>")
_ANY = re.compile(r"any\((?P<values>[^)]*)\)")


def _path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    """A werkzeug rule as an OpenAPI path, with its path parameters."""
    parameters = []
    for match in _ARGUMENT.finditer(rule):
        schema: dict[str, Any] = {"type": "string"}
        choices = _ANY.match(match.group("converter") or "")
        if choices:
            schema["enum"] = [v.strip() for v in choices.group("values").split(",")]
        parameters.append({"name": match.group("name"), "in": "path", "required": True, "schema": schema})
    return _ARGUMENT.sub(lambda m: "{" + m.group("name") + "}", rule), parameters


def _schema_ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(view: Any, parameters: list[dict[str, Any]], components: dict[str, Any]) -> dict[str, Any]:
    doc = (view.__doc__ or "").strip().splitlines()
    operation: dict[str, Any] = {
        "summary": doc[0] if doc else view.__name__.replace("_", " "),
        "operationId": view.__name__,
        "responses": {
            "default": {
                "description": "An error in the API's error shape",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
            "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
        },
    }
    query = [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
        for name in getattr(view, "query_names", ())
    ]
    if parameters or query:
        operation["parameters"] = parameters + query
    model = getattr(view, "body_model", None)
    if model is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema_ref(model, components)}},
        }
    if getattr(view, "public", False):
        operation["security"] = []
    return operation


def document(app: Flask) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR}
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/api/v1/") or rule.endpoint == "static":
            continue
        path, parameters = _path(rule.rule.removeprefix("/api/v1"))
        view = app.view_functions[rule.endpoint]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(view, parameters, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "School instant messaging", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "paths": paths,
    }
