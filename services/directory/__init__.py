"""The directory service: people, organisations, courses, projects and who may talk to whom."""

from __future__ import annotations

from pathlib import Path

from services.directory.handlers import methods
from shared.service import ServiceDefinition

MIGRATIONS = Path(__file__).parent / "migrations"

DEFINITION = ServiceDefinition(name="directory", methods=methods)
