"""The asyncio mode's own parts: the lean packet queue, and handing the feed's emits to the loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from realtime.async_server import LoopHandoff, PacketQueue
from realtime.routing import Delivery


def test_the_queue_hands_out_items_in_order_and_counts_what_is_unwritten() -> None:
    async def run() -> None:
        queue = PacketQueue()
        for item in ("a", "b", "c"):
            await queue.put(item)
        assert queue.qsize() == 3
        assert await queue.get() == "a"
        assert queue.get_nowait() == "b"
        assert await asyncio.wait_for(queue.get(), 1) == "c"
        assert queue.empty()
        with pytest.raises(asyncio.QueueEmpty):
            queue.get_nowait()

    asyncio.run(run())


def test_a_waiting_getter_gets_the_next_item_and_one_that_gave_up_takes_nothing() -> None:
    async def run() -> None:
        queue = PacketQueue()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(queue.get(), 0.01)  # python-engineio's poll, timing out
        waiting = asyncio.ensure_future(asyncio.wait_for(queue.get(), 1))
        await asyncio.sleep(0)
        queue.put_nowait("packet")
        assert await waiting == "packet"
        assert queue.empty()

    asyncio.run(run())


def test_join_waits_until_every_item_is_done() -> None:
    async def run() -> None:
        queue = PacketQueue()
        await queue.join()  # nothing pending: at once
        queue.put_nowait("a")
        joined = asyncio.ensure_future(queue.join())
        await asyncio.sleep(0)
        assert not joined.done()
        await queue.get()
        queue.task_done()
        await asyncio.wait_for(joined, 1)
        with pytest.raises(ValueError):
            queue.task_done()

    asyncio.run(run())


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def _delivery(user_id: str) -> Delivery:
    return Delivery("message.created", user_id, '2["message.created",{}]')


def test_a_flush_returns_only_after_the_loop_has_made_every_emit(loop: asyncio.AbstractEventLoop) -> None:
    made: list[tuple[str, bool]] = []

    def emit(delivery: Delivery) -> None:
        made.append((delivery.user_id, threading.current_thread().name == threading.main_thread().name))

    handoff = LoopHandoff(loop, emit)
    handoff.emit(_delivery("user-a"))
    handoff.emit(_delivery("user-b"))
    assert made == []  # collected, not yet emitted
    handoff.flush()
    assert made == [("user-a", False), ("user-b", False)]  # both made, on the loop's thread
    handoff.flush()  # nothing collected: nothing to do
    assert len(made) == 2


def test_an_emit_that_fails_on_the_loop_fails_the_flush(loop: asyncio.AbstractEventLoop) -> None:
    def emit(delivery: Delivery) -> None:
        raise RuntimeError("a bug")

    handoff = LoopHandoff(loop, emit)
    handoff.emit(_delivery("user-a"))
    with pytest.raises(RuntimeError, match="a bug"):
        handoff.flush()  # so the consumer does not ack the event
    handoff.flush()  # the failed batch is not carried into the next event
