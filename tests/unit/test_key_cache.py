"""The per-instance API key cache: a hit costs no query, entries are bounded in number and in age, and a key
revoked in the database stops working once its entry is a minute old."""
from __future__ import annotations

import uuid

import pytest

from shared.domain.errors import Unauthenticated
from shared.domain.principal import Principal
from shared.services import auth
from shared.services.auth import KEY_CACHE_SECONDS, KeyCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class NoDatabase:
    """A database that must not be asked."""

    def read(self):
        raise AssertionError("the cache should have answered")

    transaction = read


def test_a_cached_key_costs_no_query(db):
    key = auth.mint_key(db, name=f"c-{uuid.uuid4().hex[:6]}", role="service")
    cache = KeyCache()
    principal = auth.authenticate(db, f"Bearer {key}", cache=cache)
    assert auth.authenticate(NoDatabase(), f"Bearer {key}", cache=cache) == principal
    assert key.encode() not in b"".join(cache._entries)  # kept by hash only


def test_a_revoked_key_stops_working_within_a_minute(db):
    name = f"c-{uuid.uuid4().hex[:6]}"
    key = auth.mint_key(db, name=name, role="service")
    clock = Clock()
    cache = KeyCache(clock=clock)
    auth.authenticate(db, f"Bearer {key}", cache=cache)
    key_id = next(k["id"] for k in auth.list_keys(db) if k["name"] == name)
    assert auth.revoke_key(db, str(key_id))

    clock.now += KEY_CACHE_SECONDS - 1
    assert auth.authenticate(db, f"Bearer {key}", cache=cache).name == name  # still inside the documented delay
    clock.now += 1
    with pytest.raises(Unauthenticated):
        auth.authenticate(db, f"Bearer {key}", cache=cache)
    assert KEY_CACHE_SECONDS <= 60


def test_unknown_keys_are_not_cached(db):
    cache = KeyCache()
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            auth.authenticate(db, f"Bearer mk_{uuid.uuid4().hex}", cache=cache)
    assert len(cache) == 0


def test_the_cache_keeps_the_most_recently_used_keys_up_to_its_size():
    cache = KeyCache(max_size=3)
    people = {bytes([i]): Principal(client_id=str(i), name=f"c{i}", role="service") for i in range(5)}
    for key_hash in list(people)[:3]:
        cache.put(key_hash, people[key_hash])
    assert cache.get(bytes([0])) is not None  # used: now the newest
    cache.put(bytes([3]), people[bytes([3])])
    cache.put(bytes([4]), people[bytes([4])])
    assert len(cache) == 3
    assert [cache.get(bytes([i])) is not None for i in range(5)] == [True, False, False, True, True]
