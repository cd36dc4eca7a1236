"""The attachments service against its real database and a real blob store (files in a temporary folder)."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from services.attachments import store
from services.attachments.handlers import methods
from shared.blobs import LocalBlobStore, new_key
from shared.config import Settings
from shared.db import transaction
from shared.rpc import Caller, Method
from tests.integration.conftest import truncate
from tests.support.files import ELF, png  # noqa: F401  (the attachment tests import them from here)

OWNER, OTHER = "user-t-001", "user-s-0001"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


class Api:
    """The service's RPC methods called in-process, as a given user, with the blobs they judge."""

    def __init__(self, settings: Settings, table: dict[str, Method]) -> None:
        self.settings = settings
        self.table = table
        self.blobs = LocalBlobStore(Path(settings.blob_dir))

    def call(self, user: str | None, method: str, **params: Any) -> Any:
        return self.table[method](Caller(user) if user else None, params)

    def put(self, content: bytes) -> str:
        """A blob as the gateway stores an upload before registering it; its key."""
        key = new_key()
        self.blobs.put(key, [content], max_bytes=len(content) + 1)
        return key

    def upload(self, user: str, content: bytes | None = None, name: str = "picture.png") -> dict[str, Any]:
        """Store and register a file, as the gateway does for each file part."""
        key = self.put(png() if content is None else content)
        return self.call(user, "attachments.register", key=key, name=name)

    def stored(self, message_id: uuid.UUID, *attachment_ids: str) -> None:
        """A message carrying these files exists: what the service does on `conversations.message.created`."""
        with transaction(self.settings.database_url("attachments")) as session:
            store.message_stored(session, str(message_id), list(attachment_ids))

    def rows(self) -> dict[str, Any]:
        """The attachments table: id -> row."""
        with transaction(self.settings.database_url("attachments")) as session:
            found = session.execute(
                text("SELECT id, owner_id, blob_key, name, size, content_type, state, message_id FROM attachments")
            )
            return {str(r.id): r for r in found}

    def row(self, attachment_id: str) -> Any:
        return self.rows().get(attachment_id)

    def refs(self) -> set[tuple[str, str]]:
        """(attachment id, message id) for every message carrying a file."""
        with transaction(self.settings.database_url("attachments")) as session:
            found = session.execute(text("SELECT attachment_id, message_id FROM attachment_refs"))
            return {(str(r.attachment_id), str(r.message_id)) for r in found}

    def key(self, attachment_id: str) -> str:
        return self.row(attachment_id).blob_key


@pytest.fixture
def db(migrated: Settings, settings: Settings, tmp_path: Path) -> Settings:
    """An empty attachments database, blobs in this test's own folder, the test's own bus namespace."""
    truncate(settings.database_url("attachments"))
    return dataclasses.replace(settings, blob_store="local", blob_dir=str(tmp_path / "blobs"))


@pytest.fixture
def api(db: Settings) -> Api:
    return Api(db, methods(db))
