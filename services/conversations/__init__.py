"""The conversations service: conversations, participants, messages, read state."""

from __future__ import annotations

from pathlib import Path

from services.conversations.consumers import consumers
from services.conversations.handlers import methods
from shared.service import ServiceDefinition

MIGRATIONS = Path(__file__).parent / "migrations"

DEFINITION = ServiceDefinition(name="conversations", methods=methods, consumers=consumers)
