"""Gateway behaviour that needs no service: open routes, sign-in switch, body parsing, error shape."""

from __future__ import annotations

import dataclasses

import pytest
from flask.testing import FlaskClient

from gateway.app import create_app
from shared.config import Settings


@pytest.fixture
def client() -> FlaskClient:
    settings = dataclasses.replace(Settings(), dev_login=False, rpc_timeout_seconds=0.2)
    return create_app(settings).test_client()


def test_development_sign_in_does_not_exist_when_switched_off(client: FlaskClient) -> None:
    response = client.post("/api/v1/auth/dev-token", json={"user_id": "user-t-001"})
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_every_api_call_but_the_open_ones_needs_a_token(client: FlaskClient) -> None:
    for method, path in [
        ("get", "/api/v1/me"),
        ("get", "/api/v1/conversations"),
        ("post", "/api/v1/conversations"),
        ("get", "/api/v1/sync"),
        ("post", "/api/v1/attachments"),
        ("get", "/api/v1/attachments/0123456789abcdef0123456789abcdef"),
    ]:
        response = getattr(client, method)(path)
        assert response.status_code == 401
        assert response.json["error"]["code"] == "unauthenticated"
    assert client.get("/api/v1/config").status_code == 200
    assert client.get("/api/v1/openapi.json").status_code == 200
    assert client.get("/healthz").status_code == 200


def test_the_config_tells_clients_where_realtime_is(client: FlaskClient) -> None:
    config = client.get("/api/v1/config", base_url="http://school.example:8000").json
    assert config == {
        "realtime_url": "http://school.example:8001",
        "realtime_urls": ["http://school.example:8001"],
        "socketio_path": "/socket.io",
    }


def test_the_config_lists_every_realtime_process_in_the_order_to_try_them() -> None:
    listed = dataclasses.replace(Settings(), realtime_public_url="http://rt1:8001, http://rt2:8002")
    config = create_app(listed).test_client().get("/api/v1/config").json
    assert config["realtime_urls"] == ["http://rt1:8001", "http://rt2:8002"]
    assert config["realtime_url"] == "http://rt1:8001"


def test_security_headers_are_on_every_response(client: FlaskClient) -> None:
    response = client.get("/api/v1/config")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
