"""Which connections' tokens have run out."""

from __future__ import annotations

from realtime.server import Expiry


def test_expired_connections_are_returned_once_and_live_ones_kept() -> None:
    expiry = Expiry()
    expiry.track("a", 100)
    expiry.track("b", 200)
    assert expiry.expired(150) == ["a"]
    assert expiry.expired(150) == []
    assert expiry.expired(250) == ["b"]


def test_a_connection_that_left_is_forgotten() -> None:
    expiry = Expiry()
    expiry.track("a", 100)
    expiry.forget("a")
    expiry.forget("never-seen")
    assert expiry.expired(1_000) == []
