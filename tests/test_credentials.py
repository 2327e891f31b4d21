"""Password hashing, key and session secrets, and the login throttle's arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from argon2 import extract_parameters

from picloud.domain.credentials import (
    KEY_PREFIX_LEN,
    csrf_token_for,
    dummy_hash,
    hash_key,
    hash_password,
    looks_like_key,
    needs_rehash,
    new_api_key,
    new_session_token,
    verify_password,
)
from picloud.errors import InvalidInput
from picloud.store._throttle import MAX_DELAY_S, Attempts, step


def test_passwords_are_hashed_with_argon2id_and_verified() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed
    assert verify_password(hashed, "correct horse")
    assert not verify_password(hashed, "wrong horse")
    assert not verify_password("not a hash", "correct horse")
    assert not needs_rehash(hashed)


def test_the_dummy_hash_costs_what_a_real_one_does() -> None:
    assert extract_parameters(dummy_hash()) == extract_parameters(
        hash_password("x" * 8)
    )


def test_short_and_huge_passwords_are_refused() -> None:
    with pytest.raises(InvalidInput):
        hash_password("short")
    with pytest.raises(InvalidInput):
        hash_password("x" * 5000)


def test_api_keys_are_random_with_a_visible_prefix_and_a_lookup_hash() -> None:
    a, b = new_api_key(), new_api_key()
    assert a.secret != b.secret
    assert looks_like_key(a.secret)
    assert not looks_like_key(a.secret[:-1])
    assert a.prefix == a.secret[:KEY_PREFIX_LEN]
    assert a.hash == hash_key(a.secret) != a.secret
    assert len(a.hash) == 64
    assert a.secret not in repr(a)


def test_csrf_tokens_belong_to_one_session() -> None:
    one, two = new_session_token(), new_session_token()
    assert csrf_token_for(one) == csrf_token_for(one) != csrf_token_for(two)
    assert one not in csrf_token_for(one)


NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_throttle_lets_the_free_attempts_through_then_doubles_the_wait() -> None:
    row: Attempts | None = None
    now = NOW
    for _ in range(3):
        row, wait = step(row, now=now, free=3, window_s=300)
        assert wait == 0
        assert row is not None
        assert row.blocked_until is None
    waits = []
    for _ in range(10):
        row, wait = step(row, now=now, free=3, window_s=300)  # counted, then blocks
        assert wait == 0
        assert row is not None
        assert row.blocked_until is not None
        refused, wait = step(row, now=now, free=3, window_s=300)
        assert refused is None  # a blocked attempt is not counted
        waits.append(wait)
        now = row.blocked_until
    assert waits[:4] == [1.0, 2.0, 4.0, 8.0]
    assert max(waits) == MAX_DELAY_S


def test_throttle_forgets_a_subject_quiet_for_the_window() -> None:
    row = Attempts(attempts=50, last_attempt_at=NOW, blocked_until=NOW)
    later = NOW + timedelta(seconds=301)
    new, wait = step(row, now=later, free=3, window_s=300)
    assert wait == 0
    assert new == Attempts(1, later, None)
