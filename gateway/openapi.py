"""The OpenAPI 3 document for what the gateway serves, built from the request schemas."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from gateway import schemas

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
    }


def _op(
    summary: str,
    *,
    body: type[BaseModel] | None = None,
    params: list[dict[str, Any]] | None = None,
    auth: bool = True,
    ok: int = 200,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            str(ok): {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
            "default": {
                "description": "Error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
    }
    if body is not None:
        op["requestBody"] = _body(body)
    if params:
        op["parameters"] = params
    if not auth:
        op["security"] = []
    return op


def _query(name: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": {"type": "string"}}


_ID = {"name": "conversation_id", "in": "path", "required": True, "schema": {"type": "string"}}


def document() -> dict[str, Any]:
    models = [schemas.DevToken, schemas.RecipientIn, schemas.NewConversation, schemas.NewMessage]
    components: dict[str, Any] = {"Error": ERROR}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    return {
        "openapi": "3.1.0",
        "info": {"title": "School instant messaging", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "paths": {
            "/config": {"get": _op("Where clients find the realtime server", auth=False)},
            "/auth/dev-token": {
                "post": _op("Development sign-in: a token for a roster user", body=schemas.DevToken, auth=False)
            },
            "/me": {"get": _op("The caller, with unread_total")},
            "/directory/search": {
                "get": _op("Recipients by name: people, courses, projects", params=[_query("q", True)])
            },
            "/conversations": {
                "get": _op(
                    "The caller's conversations, newest activity first", params=[_query("cursor"), _query("limit")]
                ),
                "post": _op("Start a conversation with a first message", body=schemas.NewConversation, ok=201),
            },
            "/conversations/{conversation_id}": {"get": _op("One conversation", params=[_ID])},
            "/conversations/{conversation_id}/messages": {
                "get": _op("History, newest first", params=[_ID, _query("cursor"), _query("limit")]),
                "post": _op("Send a message", body=schemas.NewMessage, params=[_ID], ok=201),
            },
        },
    }
