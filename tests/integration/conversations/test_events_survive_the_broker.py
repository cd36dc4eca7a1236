"""A message sent while RabbitMQ is unreachable for the relay still reaches consumers, once."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from services import directory
from services.conversations.handlers import methods
from services.directory.handlers import import_roster
from shared.bus import ConsumerSpec, start_consumer
from shared.config import Settings
from shared.db import transaction
from shared.events import Envelope
from shared.outbox import claim_event, start_relay
from shared.rpc import Caller, RpcServer
from tests.support.tcpproxy import TcpProxy
from tests.support.waiting import wait_for


def test_a_message_sent_while_the_broker_is_unreachable_is_delivered_once_when_it_is_back(
    db: Settings, demo_roster: Path
) -> None:
    import_roster(db.database_url("directory"), demo_roster)
    directory_rpc = RpcServer(db, "directory", directory.DEFINITION.methods(db), threads=1).start()
    url = db.database_url("conversations")
    handled: list[str] = []

    def consumer_handler(envelope: Envelope) -> None:
        with transaction(url) as session:
            if claim_event(session, "test-watcher", envelope.id):
                handled.append(envelope.data["message"]["body"])

    consumer, _ = start_consumer(db, ConsumerSpec("t-watch", ("conversations.message.#",), consumer_handler))
    proxy = TcpProxy("127.0.0.1", 5672)
    relay, _ = start_relay(
        dataclasses.replace(db, amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}//"), "conversations", url
    )
    rpc = methods(db)
    try:
        started = rpc["conversations.create"](
            Caller("user-t-001"), {"recipients": [{"type": "user", "id": "user-s-0001"}], "body": "before"}
        )
        assert wait_for(lambda: handled == ["before"])

        proxy.cut()
        sent = rpc["messages.send"](
            Caller("user-s-0001"), {"conversation_id": started["conversation"]["id"], "body": "during"}
        )
        assert sent["body"] == "during"  # the send itself does not wait for the broker
        time.sleep(1.5)
        assert handled == ["before"]

        proxy.restore()
        assert wait_for(lambda: handled == ["before", "during"], timeout=20)
        time.sleep(0.5)
        assert handled == ["before", "during"]
    finally:
        relay.stop()
        consumer.stop()
        directory_rpc.stop()
        proxy.close()
