"""The per-process cache of validated Keystone tokens: expiry, max age, LRU bound."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stackyard.auth.keystone_cache import KeystoneTokenCache
from stackyard.cloud.clock import FakeClock
from stackyard.cloud.identity import KeystoneToken
from stackyard.errors import ValidationError


def test_a_token_is_served_until_it_expires(
    clock: FakeClock, make_token: Callable[..., KeystoneToken]
) -> None:
    cache = KeystoneTokenCache(10, clock)
    token = make_token(token="t1", lifetime=60)
    cache.put(token)
    assert cache.get("t1") is token
    assert cache.get("t2") is None
    clock.advance(59)
    assert cache.get("t1") is token
    clock.advance(1)
    assert cache.get("t1") is None
    assert len(cache) == 0


def test_max_age_asks_keystone_again(clock: FakeClock, make_token: Callable[..., KeystoneToken]) -> None:
    cache = KeystoneTokenCache(10, clock, max_age=30)
    cache.put(make_token(token="t1", lifetime=3600))
    clock.advance(29)
    assert cache.get("t1") is not None
    clock.advance(1)
    assert cache.get("t1") is None


def test_least_recently_used_tokens_go_first(
    clock: FakeClock, make_token: Callable[..., KeystoneToken]
) -> None:
    cache = KeystoneTokenCache(2, clock)
    cache.put(make_token(token="a"))
    cache.put(make_token(token="b"))
    assert cache.get("a") is not None
    cache.put(make_token(token="c"))
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None


def test_expired_tokens_are_not_stored_and_can_be_purged(
    clock: FakeClock, make_token: Callable[..., KeystoneToken]
) -> None:
    cache = KeystoneTokenCache(10, clock)
    cache.put(make_token(token="dead", lifetime=0))
    assert len(cache) == 0
    cache.put(make_token(token="short", lifetime=5))
    cache.put(make_token(token="long", lifetime=500))
    clock.advance(10)
    assert cache.purge_expired() == 1
    cache.discard("long")
    assert len(cache) == 0


def test_bad_sizes_are_refused(clock: FakeClock) -> None:
    with pytest.raises(ValidationError):
        KeystoneTokenCache(0, clock)
    with pytest.raises(ValidationError):
        KeystoneTokenCache(1, clock, max_age=0)
