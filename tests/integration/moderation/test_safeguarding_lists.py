"""Safeguarding lists: who may set them, and messages reaching moderation only while a list exists."""

from __future__ import annotations

from kombu import Connection

from services.moderation.handlers import CONVERSATION_EVENTS
from shared.events import make_event
from tests.integration.moderation.conftest import World
from tests.support.bus import publish

ADMIN, OTHER_ADMIN, DISTRICT_ADMIN, STUDENT = "user-a-002", "user-a-001", "user-a-000", "user-s-0001"


def waiting(world: World) -> int:
    """Messages waiting in moderation's queue (nothing consumes it in these tests)."""
    with Connection(world.settings.amqp_url) as conn:
        name = world.settings.consumer_queue(CONVERSATION_EVENTS)
        return conn.channel().queue_declare(queue=name, passive=True).message_count


def send_event(world: World) -> None:
    message = {"id": "m1", "body": "hello", "sender": {"id": STUDENT}, "deleted": None}
    publish(
        world.settings,
        make_event("conversations.message.created", {"message": message, "conversation_id": "c1"}, producer="test"),
    )


def test_messages_reach_moderation_only_while_some_organisation_keeps_a_list(world: World) -> None:
    world.call(ADMIN, "safeguarding.set", org_id="org-school-2", phrases=[])  # declares, nothing bound yet
    send_event(world)
    assert waiting(world) == 0
    saved = world.call(ADMIN, "safeguarding.set", org_id="org-school-2", phrases=["hurt myself"], lead_ids=[ADMIN])
    assert saved["phrases"] == ["hurt myself"] and saved["lead_ids"] == [ADMIN]
    send_event(world)
    assert waiting(world) == 1
    world.call(DISTRICT_ADMIN, "safeguarding.set", org_id="org-school-2", phrases=[])
    send_event(world)
    assert waiting(world) == 1
    audit = world.call(DISTRICT_ADMIN, "audit.list", action="safeguarding.changed")["items"]
    assert [e["details"]["phrase_count"] for e in audit] == [0, 1, 0]
    assert all("hurt" not in str(e) for e in audit)


def test_only_administrators_of_the_organisation_set_its_list_and_leads(world: World) -> None:
    before = world.call(ADMIN, "safeguarding.get", org_id="org-school-2")
    refusals = [
        (OTHER_ADMIN, {"org_id": "org-school-2", "phrases": ["x"]}, "forbidden"),
        (STUDENT, {"org_id": "org-school-2", "phrases": ["x"]}, "forbidden"),
        (ADMIN, {"org_id": "org-school-2", "phrases": ["x"], "lead_ids": [OTHER_ADMIN]}, "validation_failed"),
        (ADMIN, {"org_id": "org-school-2", "phrases": ["x"], "lead_ids": [STUDENT]}, "validation_failed"),
        (ADMIN, {"org_id": "org-school-2", "phrases": ["x"] * 2 + [""]}, "validation_failed"),
        (ADMIN, {"org_id": "org-school-2", "phrases": "x"}, "validation_failed"),
        (ADMIN, {"org_id": "org-school-2", "phrases": ["x"], "lead_ids": "user-a-002"}, "validation_failed"),
        (ADMIN, {"org_id": "org-district", "phrases": ["x"]}, "forbidden"),
    ]
    for user, params, code in refusals:
        assert world.refusal(user, "safeguarding.set", **params).code == code, params
    assert world.call(ADMIN, "safeguarding.get", org_id="org-school-2") == before
    assert world.call(DISTRICT_ADMIN, "safeguarding.set", org_id="org-school-1", phrases=["x"])["phrases"] == ["x"]
