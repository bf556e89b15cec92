"""Tokens and the audit trail of their changes, on every backend: SQLite, PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from pjai.errors import ConfigError
from pjai.schema.types import from_iso, to_iso
from pjai.sql.engine import create_sql_engine
from pjai.sync.server import AuditEntry, ServerDatabase, local_actor
from pjai.sync.server.tables import audit, tokens
from pjai.sync.server.tokens import KEPT_BUCKETS, RateLimiter
from tests.databases import BACKENDS, database


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database(request.param, tmp_path, "sync-server") as found:
        yield found


@pytest.fixture
def server_db(url: str) -> Iterator[ServerDatabase]:
    with ServerDatabase.open(url) as opened:
        yield opened


def test_creating_and_revoking_tokens_is_audited(server_db: ServerDatabase) -> None:
    secret, laptop = server_db.tokens.create("s1", "write", "laptop", actor="ann@desk")
    _, admin = server_db.tokens.create("*", "admin")
    revoked = server_db.tokens.revoke(laptop.id, actor="bob@desk")
    assert server_db.tokens.check(secret) is None

    entries = server_db.audit.list()
    assert [(e.action, e.token_id, e.actor) for e in entries] == [
        ("token.create", laptop.id, "ann@desk"),
        ("token.create", admin.id, None),  # who made it is not always known
        ("token.revoke", laptop.id, "bob@desk"),
    ]
    first, _, last = entries
    assert first == AuditEntry(
        seq=first.seq,
        at=laptop.created_at,
        action="token.create",
        token_id=laptop.id,
        token_label="laptop",
        store_id="s1",
        role="write",
        actor="ann@desk",
    )
    assert last.at == revoked.revoked_at
    assert (last.token_label, last.store_id, last.role) == ("laptop", "s1", "write")
    assert first.seq < entries[1].seq < last.seq


def test_shortening_a_token_brings_its_expiry_forward_only(server_db: ServerDatabase) -> None:
    store = server_db.tokens
    secret, forever = store.create("s1", "write", "laptop")
    _, soon = store.create("s1", "read", "phone", expires_in=timedelta(minutes=5))
    _, gone = store.create("s1", "read", "tablet")
    store.revoke(gone.id)
    ends = from_iso(forever.created_at) + timedelta(hours=1)
    assert store.shorten(forever.id, ends, actor="ann@desk")
    assert store.shorten(soon.id, ends) is False  # it ends sooner already
    assert store.shorten(gone.id, ends) is False  # revoked: nothing to shorten
    assert store.shorten("no-such-token", ends) is False
    listed = {t.label: t.expires_at for t in store.list()}
    assert listed["laptop"] == to_iso(ends)
    assert listed["phone"] == soon.expires_at
    assert store.check(secret) is not None  # still within the hour
    assert store.shorten(forever.id, ends - timedelta(days=1))  # a past end: expired now
    assert store.check(secret) is None
    assert store.shorten(forever.id, ends - timedelta(days=2)) is False  # expired already
    shortened = [
        (e.token_id, e.actor) for e in server_db.audit.list() if e.action == "token.shorten"
    ]
    assert shortened == [(forever.id, "ann@desk"), (forever.id, None)]


def test_the_trail_lists_the_newest_entries_and_one_tokens(server_db: ServerDatabase) -> None:
    made = [server_db.tokens.create(f"s{i}", "read")[1] for i in range(4)]
    server_db.tokens.revoke(made[1].id)
    newest = server_db.audit.list(limit=2)
    assert [(e.action, e.token_id) for e in newest] == [
        ("token.create", made[3].id),
        ("token.revoke", made[1].id),
    ]
    assert [e.action for e in server_db.audit.list(token_id=made[1].id)] == [
        "token.create",
        "token.revoke",
    ]
    assert server_db.audit.list(token_id="no-such-token") == []
    with pytest.raises(ConfigError, match="limit 0: give at least 1"):
        server_db.audit.list(limit=0)


def test_refused_changes_leave_no_entry(server_db: ServerDatabase) -> None:
    with pytest.raises(ConfigError, match="role 'boss'"):
        server_db.tokens.create("s1", "boss")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no token 'nope'"):
        server_db.tokens.revoke("nope")
    _, token = server_db.tokens.create("s1", "read")
    server_db.tokens.revoke(token.id)
    with pytest.raises(ConfigError, match="no live token"):
        server_db.tokens.revoke(token.id)  # twice
    assert [e.action for e in server_db.audit.list()] == ["token.create", "token.revoke"]


@pytest.mark.parametrize("store_id", ["x" * 101, "é" * 51, "s\x00"])
def test_a_token_for_a_store_no_hello_could_name_is_refused(
    server_db: ServerDatabase, store_id: str
) -> None:
    # A hello names a store in 1 to 100 bytes without NUL: such a token would open
    # nothing, and every client given it would be refused.
    with pytest.raises(ConfigError, match="a store id has 1 to 100 bytes"):
        server_db.tokens.create(store_id, "write")
    assert server_db.tokens.list() == []
    assert server_db.audit.list() == []
    server_db.tokens.create("é" * 50, "write")  # 100 bytes: a hello can name it


def test_a_change_and_its_entry_are_one_transaction(
    server_db: ServerDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, kept = server_db.tokens.create("s1", "write")

    def failing(*_: object, **__: object) -> None:
        raise ConfigError("the audit trail is out of order")

    monkeypatch.setattr("pjai.sync.server.tokens.record", failing)
    with pytest.raises(ConfigError, match="out of order"):
        server_db.tokens.create("s2", "write")
    with pytest.raises(ConfigError, match="out of order"):
        server_db.tokens.revoke(kept.id)
    assert [(t.store_id, t.revoked_at) for t in server_db.tokens.list()] == [("s1", None)]
    assert [e.token_id for e in server_db.audit.list()] == [kept.id]


@pytest.mark.parametrize("change", ["update", "delete"])
def test_the_database_keeps_the_trail_append_only(server_db: ServerDatabase, change: str) -> None:
    server_db.tokens.create("s1", "write", actor="ann@desk")
    statement = (
        sa.update(audit).values(actor="someone else") if change == "update" else sa.delete(audit)
    )
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), server_db.engine.begin() as conn:
        conn.execute(statement)
    assert [e.actor for e in server_db.audit.list()] == ["ann@desk"]


def test_a_database_from_before_the_trail_gets_one(url: str) -> None:
    engine = create_sql_engine(url)
    try:
        tokens.create(engine)  # the tokens alone, as servers kept them before
        with engine.begin() as conn:
            assert not sa.inspect(conn).has_table("pjai_sync_audit")
    finally:
        engine.dispose()
    with ServerDatabase.open(url) as opened:
        assert opened.audit.list() == []
        _, token = opened.tokens.create("s1", "read", actor="ann@desk")
        assert [e.token_id for e in opened.audit.list()] == [token.id]


def test_the_local_actor_names_user_and_host() -> None:
    actor = local_actor()
    assert actor is not None
    user, at, host = actor.partition("@")
    assert user
    assert at
    assert host


def test_a_token_expires_and_a_rotation_overlaps_the_old_one(server_db: ServerDatabase) -> None:
    secret, laptop = server_db.tokens.create("s1", "write", "laptop", expires_in=timedelta(days=30))
    assert laptop.expires_at is not None
    assert laptop.expires_at > laptop.created_at
    assert server_db.tokens.check(secret) == laptop
    fresh, new, old = server_db.tokens.rotate(laptop.id, overlap=timedelta(hours=1), actor="ann")
    assert (new.store_id, new.role, new.label) == ("s1", "write", "laptop")
    assert old.expires_at is not None
    assert old.expires_at < laptop.expires_at  # the overlap is shorter than its life was
    assert server_db.tokens.check(secret) == old  # both work during the overlap
    assert server_db.tokens.check(fresh) == new
    assert [e.action for e in server_db.audit.list()][-2:] == ["token.rotate", "token.create"]
    _, gone, _ = server_db.tokens.rotate(new.id, overlap=timedelta(0))
    assert server_db.tokens.check(fresh) is None  # no overlap: the old one stops at once
    with pytest.raises(ConfigError, match="no live token"):
        server_db.tokens.rotate(new.id)
    with pytest.raises(ConfigError, match="must live for some time"):
        server_db.tokens.create("s1", "read", expires_in=timedelta(0))
    assert gone.expires_at is not None  # as long-lived as the token it replaces: 30 days
    assert from_iso(gone.expires_at) - from_iso(gone.created_at) == timedelta(days=30)


def test_an_expired_token_is_refused(server_db: ServerDatabase) -> None:
    secret, token = server_db.tokens.create("s1", "read", expires_in=timedelta(microseconds=1))
    time.sleep(0.01)
    assert server_db.tokens.check(secret) is None
    assert [t.id for t in server_db.tokens.list()] == [token.id]  # listed, with its expiry


def test_a_tokens_table_from_before_expiry_gets_the_column(url: str) -> None:
    engine = create_sql_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE pjai_sync_tokens (id VARCHAR PRIMARY KEY, digest VARCHAR NOT NULL "
                "UNIQUE, store_id VARCHAR NOT NULL, role VARCHAR NOT NULL, label TEXT NOT NULL, "
                "created_at VARCHAR NOT NULL, revoked_at VARCHAR)"
            )
    finally:
        engine.dispose()
    with ServerDatabase.open(url) as opened:
        secret, token = opened.tokens.create("s1", "read")
        assert opened.tokens.check(secret) == token


def test_a_token_is_named_by_a_unique_start_of_its_id(server_db: ServerDatabase) -> None:
    tokens = server_db.tokens
    _, first = tokens.create("s1", "write", "laptop")
    _, second = tokens.create("s1", "write", "desk")
    shared = next(
        i for i in range(len(first.id)) if first.id[: i + 1] != second.id[: i + 1]
    )  # ids made together share their first characters
    with pytest.raises(ConfigError, match="could be any of these tokens") as ambiguous:
        tokens.revoke(first.id[:shared])
    assert first.id in str(ambiguous.value)
    assert second.id in str(ambiguous.value)
    assert tokens.revoke(first.id[: shared + 1]).id == first.id
    _, new, old = tokens.rotate(second.id[: shared + 1], overlap=timedelta(0))
    assert (old.id, new.label) == (second.id, "desk")
    with pytest.raises(ConfigError, match="no token 'zz'"):
        tokens.revoke("zz")
    with pytest.raises(ConfigError, match="no live token"):
        tokens.revoke(first.id)  # revoked already


def test_the_rate_limiter_forgets_buckets_that_filled_up_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [0.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    limiter = RateLimiter(rate=10, burst=5)
    for n in range(10 * KEPT_BUCKETS):
        limiter.take(f"store-{n}", 1)
        clock[0] += 0.01  # each bucket is full again after 0.1 s
    assert len(limiter) <= KEPT_BUCKETS
    # A bucket still being drawn on is kept, and still limits.
    limiter.take("busy", 5)
    for n in range(2 * KEPT_BUCKETS):
        limiter.take(f"other-{n}", 1)
    assert limiter.take("busy", 5) > 0
