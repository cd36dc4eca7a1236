"""Mass messages (F27): admins' one-way messages to their organisations, as queued jobs."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from gateway import schemas
from gateway.web import call, reads, takes

bp = Blueprint("mass", __name__, url_prefix="/api/v1")


@bp.post("/mass-messages")
@takes(schemas.MassMessageIn)
def create_mass_message(body: schemas.MassMessageIn) -> Any:
    """Queue a mass message; answered at once (202) with the job, which progresses on its own."""
    return call("mass_messaging", "mass.create", body.model_dump()), 202


@bp.get("/mass-messages")
@reads("cursor", "limit")
def list_mass_messages(params: dict[str, Any]) -> Any:
    """The caller's mass messages, newest first."""
    return call("mass_messaging", "mass.list", params)


@bp.get("/mass-messages/<job_id>")
def get_mass_message(job_id: str) -> Any:
    """One mass message: state, audience, delivered, skipped, failed."""
    return call("mass_messaging", "mass.get", {"job_id": job_id})


@bp.post("/mass-messages/<job_id>/cancel")
def cancel_mass_message(job_id: str) -> Any:
    """Stop delivering what is not delivered yet."""
    return call("mass_messaging", "mass.cancel", {"job_id": job_id})
