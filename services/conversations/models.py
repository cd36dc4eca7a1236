"""The conversations service's tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.outbox import outbox_table, processed_events_table


class Base(DeclarativeBase):
    pass


outbox_table(Base.metadata)
processed_events_table(Base.metadata)


class Person(Base):
    """What this service knows of a roster user: a replica kept fresh by directory events."""

    __tablename__ = "people"
    user_id: Mapped[str] = mapped_column(primary_key=True)
    name: Mapped[str]
    role: Mapped[str]
    title: Mapped[str]
    avatar_url: Mapped[str | None]
    enabled: Mapped[bool]


class Conversation(Base):
    __tablename__ = "conversations"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=sa.text("gen_random_uuid()"))
    type: Mapped[str]
    name: Mapped[str | None]
    pair_key: Mapped[str | None] = mapped_column(unique=True)
    status: Mapped[str] = mapped_column(server_default="open")
    created_by: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())
    last_seq: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    last_activity_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())
    last_message: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class Participant(Base):
    __tablename__ = "participants"
    conversation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("conversations.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(primary_key=True, index=True)
    joined_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())
    last_read_seq: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")


class Message(Base):
    __tablename__ = "messages"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=sa.text("gen_random_uuid()"))
    conversation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("conversations.id"))
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    sender_id: Mapped[str]
    body: Mapped[str]
    links: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    client_id: Mapped[str | None]
    request_hash: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())
    edited_at: Mapped[datetime | None]
    deleted: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
