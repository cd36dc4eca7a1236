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


class Recipients(Body):
    recipients: list[RecipientIn] = Field(min_length=1, max_length=1000)


class Rename(Body):
    name: str = Field(min_length=1, max_length=200)


class UserIds(Body):
    user_ids: list[str] = Field(min_length=1, max_length=300)


class EditMessage(Body):
    body: str


class Forward(Body):
    conversation_id: str | None = Field(default=None, min_length=1, max_length=100)
    recipients: list[RecipientIn] | None = Field(default=None, min_length=1, max_length=1000)
    mode: Literal["group", "individual"] | None = None
    name: str | None = Field(default=None, max_length=200)


class ReadMark(Body):
    message_id: str | None = Field(default=None, min_length=1, max_length=100)


class NewMessage(Body):
    body: str = ""
    attachment_ids: list[str] = Field(default_factory=list, max_length=20)
    client_id: str | None = Field(default=None, min_length=1, max_length=100)


class MessagingBlockIn(Body):
    """Exactly one target; the directory refuses none or several."""

    user_id: str | None = Field(default=None, min_length=1, max_length=200)
    org_id: str | None = Field(default=None, min_length=1, max_length=200)
    course_id: str | None = Field(default=None, min_length=1, max_length=200)


class CommunicationRuleIn(Body):
    """`student_policy` null removes the organisation's own rule: it inherits again."""

    student_policy: Literal["anyone", "courses", "teachers"] | None


class PrivilegeIn(Body):
    user_id: str = Field(min_length=1, max_length=200)
    privilege: str = Field(min_length=1, max_length=100)


class ReportIn(Body):
    """A message or a conversation (the service refuses none or both), to one of the staff offered."""

    message_id: str | None = Field(default=None, min_length=1, max_length=100)
    conversation_id: str | None = Field(default=None, min_length=1, max_length=100)
    to_user_id: str = Field(min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=20_000)


class ResolveIn(Body):
    note: str | None = Field(default=None, max_length=20_000)


class SafeguardingIn(Body):
    phrases: list[str] = Field(max_length=5_000)
    lead_ids: list[str] = Field(default_factory=list, max_length=500)


class MassMessageIn(Body):
    """`org_id` is the organisation shown as the sender; `org_ids` those whose members receive it."""

    org_id: str = Field(min_length=1, max_length=200)
    org_ids: list[str] | None = Field(default=None, max_length=1000)
    roles: list[str] | Literal["everyone"] | None = None
    body: str
