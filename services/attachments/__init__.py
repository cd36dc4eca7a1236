"""The attachments service: uploaded files judged by content, claimed by messages, served to participants."""

from __future__ import annotations

from pathlib import Path

from services.attachments.handlers import Purger, consumers, methods
from shared.service import ServiceDefinition

MIGRATIONS = Path(__file__).parent / "migrations"

DEFINITION = ServiceDefinition(
    name="attachments", methods=methods, consumers=consumers, workers=lambda settings: [Purger(settings)]
)
