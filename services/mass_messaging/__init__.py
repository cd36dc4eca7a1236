"""The mass-messaging service: admins' one-way messages to their organisations, as queued jobs (F27)."""

from __future__ import annotations

from pathlib import Path

from services.mass_messaging.handlers import Sweeper, methods
from shared.service import ServiceDefinition

MIGRATIONS = Path(__file__).parent / "migrations"

DEFINITION = ServiceDefinition(name="mass_messaging", methods=methods, workers=lambda settings: [Sweeper(settings)])
