"""The sync service: the change log every client event passes through, and catch-up from it (F29)."""

from __future__ import annotations

from pathlib import Path

from services.sync.handlers import methods
from services.sync.log import ChangeLogger
from shared.service import ServiceDefinition

MIGRATIONS = Path(__file__).parent / "migrations"

DEFINITION = ServiceDefinition(
    name="sync", methods=methods, workers=lambda settings: [ChangeLogger(settings)], outbox=False
)
