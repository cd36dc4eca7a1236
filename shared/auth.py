"""Bearer JWTs: verification for every entry point, minting for development sign-in."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

import jwt

from shared.config import Settings
from shared.errors import AppError


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    expires_at: int


def issue_token(settings: Settings, user_id: str, *, ttl_seconds: int | None = None) -> str:
    """Development tokens only: production tokens come from the school's identity provider."""
    now = int(time.time())
    claims = {
        "sub": user_id,
        "iat": now,
        "exp": now + (ttl_seconds if ttl_seconds is not None else settings.token_ttl_seconds),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def verify_token(settings: Settings, token: str | None) -> Identity:
    """The verified identity, or `unauthenticated` for a missing, expired, forged or foreign token."""
    if not token:
        raise AppError("unauthenticated", "Sign in to continue.")
    key = settings.jwt_public_key or settings.jwt_secret
    identity = _verified(token, key, settings.jwt_algorithm, settings.jwt_audience, settings.jwt_issuer)
    if identity.expires_at <= time.time():
        raise AppError("unauthenticated", "Your session has expired. Sign in again.")
    return identity


# A client sends the same token with every request until it expires: its signature is checked
# once, and only its expiry again. Only tokens that verified are remembered, each under its
# exact text and the key and rules it verified against.
@lru_cache(maxsize=20_000)
def _verified(token: str, key: str, algorithm: str, audience: str, issuer: str) -> Identity:
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=audience,
            issuer=issuer,
            options={"require": ["sub", "exp"]},
        )
    except jwt.ExpiredSignatureError:
        raise AppError("unauthenticated", "Your session has expired. Sign in again.") from None
    except jwt.PyJWTError:
        raise AppError("unauthenticated", "Sign in to continue.") from None
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise AppError("unauthenticated", "Sign in to continue.")
    return Identity(user_id=sub, expires_at=int(claims["exp"]))


def bearer(header: str | None) -> str | None:
    """The token in an `Authorization: Bearer <token>` header, or None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
