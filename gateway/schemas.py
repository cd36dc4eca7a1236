"""Request bodies as the API accepts them: shape and types only; the services own the rules."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DevToken(Body):
    user_id: str = Field(min_length=1, max_length=200)


class RecipientIn(Body):
    type: Literal["user", "course", "project"]
    id: str = Field(min_length=1, max_length=200)


class NewConversation(Body):
    recipients: list[RecipientIn] = Field(min_length=1, max_length=1000)
    mode: Literal["group", "individual"] | None = None
    body: str = ""
    attachment_ids: list[str] = Field(default_factory=list, max_length=20)
    client_id: str | None = Field(default=None, min_length=1, max_length=100)
    name: str | None = Field(default=None, max_length=200)


class NewMessage(Body):
    body: str = ""
    attachment_ids: list[str] = Field(default_factory=list, max_length=20)
    client_id: str | None = Field(default=None, min_length=1, max_length=100)
