"""The moderation service: abuse reports, the audit log, safeguarding flags (F23–F26)."""

from __future__ import annotations

from pathlib import Path

from services.moderation.handlers import consumers, methods
from shared.service import ServiceDefinition

MIGRATIONS = Path(__file__).parent / "migrations"

DEFINITION = ServiceDefinition(name="moderation", methods=methods, consumers=consumers)
