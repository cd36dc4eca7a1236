"""The web client (F30): `/` and its static files, open to all (the client signs in by itself).

Every response carries a Content-Security-Policy that lets the page run only its own scripts and
styles and talk only to the gateway and the realtime servers, so that text from users can never
become code even if a bug rendered it as markup.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, Response, request, send_from_directory

from gateway.web import public, settings

bp = Blueprint("web_client", __name__)
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def realtime_origins() -> list[str]:
    """The realtime servers as `GET /api/v1/config` names them, each as http(s) and ws(s) origin."""
    s = settings()
    urls = [u.strip() for u in s.realtime_public_url.split(",") if u.strip()]
    if not urls:
        urls = [f"{request.scheme}://{request.host.split(':')[0]}:{s.realtime_port}"]
    origins: list[str] = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            continue  # not something a CSP source can name; the client cannot use it either
        socket = "wss" if parts.scheme == "https" else "ws"
        for origin in (f"{parts.scheme}://{parts.netloc}", f"{socket}://{parts.netloc}"):
            if origin not in origins:
                origins.append(origin)
    return origins


def content_security_policy() -> str:
    connect = " ".join(["'self'", *realtime_origins()])
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "font-src 'self'",
            f"connect-src {connect}",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ]
    )


def _safe(response: Response, *, cache: str) -> Response:
    response.headers["Content-Security-Policy"] = content_security_policy()
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    # Revalidate every time (the ETag makes that cheap): a deploy is seen at once, no build step needed.
    response.headers["Cache-Control"] = cache
    return response


@bp.get("/")
@public
def index() -> Response:
    """The web client's page."""
    return _safe(send_from_directory(STATIC_DIR, "index.html", mimetype="text/html"), cache="no-cache")


@bp.get("/static/<path:filename>")
@public
def static_file(filename: str) -> Response:
    """The client's scripts, styles and vendored libraries (safe_join keeps requests inside the folder)."""
    return _safe(send_from_directory(STATIC_DIR, filename), cache="no-cache")
