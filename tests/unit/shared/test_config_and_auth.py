"""Settings, tokens, cursors and the event catalogue: pure rules, no services."""

from __future__ import annotations

import dataclasses

import pytest

from shared.auth import bearer, issue_token, verify_token
from shared.config import Settings
from shared.cursor import Cursors
from shared.errors import STATUS_BY_CODE, AppError
from shared.events import CATALOGUE, Envelope, make_event


def test_production_refuses_the_built_in_development_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IM_ENV", "production")
    with pytest.raises(ValueError, match="JWT_PUBLIC_KEY.*CURSOR_SECRET"):
        Settings.from_env()
    monkeypatch.setenv("JWT_SECRET", "a-real-secret-of-enough-length-0123456789")
    monkeypatch.setenv("CURSOR_SECRET", "another-real-secret")
    settings = Settings.from_env()
    assert settings.dev_login is False


def test_each_service_gets_its_own_database_unless_one_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRES_URL", "postgresql+psycopg://u@db:5432")
    monkeypatch.setenv("DIRECTORY_DATABASE_URL", "postgresql+psycopg://u@other/dir")
    settings = Settings.from_env()
    assert settings.database_url("conversations") == "postgresql+psycopg://u@db:5432/im_conversations"
    assert settings.database_url("directory") == "postgresql+psycopg://u@other/dir"


def test_a_token_round_trips_and_a_tampered_or_expired_one_is_refused() -> None:
    settings = Settings()
    token = issue_token(settings, "user-1")
    assert verify_token(settings, token).user_id == "user-1"
    for bad in [
        token[:-3] + "abc",
        issue_token(settings, "user-1", ttl_seconds=-1),
        "",
        None,
        issue_token(dataclasses.replace(settings, jwt_secret="x" * 40), "user-1"),
    ]:
        with pytest.raises(AppError) as info:
            verify_token(settings, bad)
        assert info.value.code == "unauthenticated"


def test_a_token_verified_before_is_refused_once_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    token = issue_token(settings, "user-1", ttl_seconds=60)
    identity = verify_token(settings, token)
    assert verify_token(settings, token) == identity
    later = identity.expires_at + 1
    monkeypatch.setattr("shared.auth.time.time", lambda: later)
    with pytest.raises(AppError) as info:
        verify_token(settings, token)
    assert (info.value.code, info.value.message) == ("unauthenticated", "Your session has expired. Sign in again.")
    # Nor does a token verified under one key pass where another is configured.
    other = dataclasses.replace(settings, jwt_secret="y" * 40)
    monkeypatch.undo()
    with pytest.raises(AppError):
        verify_token(other, token)


def test_only_bearer_authorization_headers_carry_a_token() -> None:
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer abc") == "abc"
    assert bearer("Basic abc") is None
    assert bearer("Bearer ") is None
    assert bearer(None) is None


def test_a_cursor_is_bound_to_its_user_and_list() -> None:
    cursors = Cursors("secret")
    token = cursors.encode("u1", "messages:c1", [42])
    assert cursors.decode(token, "u1", "messages:c1") == [42]
    assert cursors.decode(None, "u1", "messages:c1") is None
    for user, kind, value in [
        ("u2", "messages:c1", token),
        ("u1", "messages:c2", token),
        ("u1", "messages:c1", token + "x"),
        ("u1", "messages:c1", 7),
    ]:
        with pytest.raises(AppError) as info:
            cursors.decode(value, user, kind)
        assert info.value.code == "invalid_cursor"
    assert Cursors("other").encode("u1", "k", [1]) != cursors.encode("u1", "k", [1])


def test_every_error_code_maps_to_an_http_status() -> None:
    assert AppError("not_found", "x").status == 404
    assert AppError("conversation_closed", "x").status == 409
    assert all(400 <= status < 600 for status in STATUS_BY_CODE.values())


def test_an_event_must_be_catalogued_and_carry_its_fields() -> None:
    with pytest.raises(KeyError):
        make_event("conversations.nothing.happened", {}, producer="t")
    with pytest.raises(KeyError):
        make_event("conversations.message.created", {"message": {}}, producer="t")
    event = make_event("directory.user.removed", {"user_id": "u"}, producer="t", audience=["a"])
    assert Envelope.from_dict(event.to_dict()) == event
    assert all(name.count(".") == 2 for name in CATALOGUE)


def test_a_malformed_envelope_is_refused() -> None:
    for raw in [
        {},
        {"id": "not-a-uuid", "type": "x", "data": {}},
        {"id": "6f1d4f8e-6f0e-4d59-9a43-2d8a4d36b1a1", "type": "x", "data": [], "audience": None},
        {"id": "6f1d4f8e-6f0e-4d59-9a43-2d8a4d36b1a1", "type": "x", "data": {}, "audience": "everyone"},
    ]:
        with pytest.raises(ValueError):
            Envelope.from_dict(raw)
