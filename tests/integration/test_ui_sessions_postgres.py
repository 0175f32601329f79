"""The pages' session store on the real PostgreSQL, in a schema of its own (dropped after):
keyed hashes only, idle and absolute expiry on a controlled clock, revocation, logout."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from serving.db import open_engine
from serving.sessions import TOUCH_EVERY, SessionStore, ui_sessions
from serving.users import Role, UserStore
from tests.integration.conftest import POSTGRES

pytestmark = pytest.mark.integration
PEPPER = "a-pepper-for-the-session-test"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def engine(schema: str) -> Iterator[sa.Engine]:
    url = sa.make_url(POSTGRES).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = open_engine(url.render_as_string(hide_password=False))
    yield engine
    engine.dispose()


def test_sessions_on_postgres(engine: sa.Engine, schema: str) -> None:
    clock = Clock()
    store = SessionStore(
        engine, PEPPER, idle=timedelta(minutes=30), lifetime=timedelta(hours=8), clock=clock
    )
    SessionStore(engine, PEPPER, idle=timedelta(minutes=1), lifetime=timedelta(hours=1))
    assert ui_sessions.name in sa.inspect(engine).get_table_names(schema=schema)
    users = UserStore(engine, PEPPER)
    eve, _ = users.add("eve", Role.officer, ["AST"])

    session_id, made = store.create(eve)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(ui_sessions)).mappings().one()
    assert stored["id_hash"] == store.digest(session_id) and session_id not in str(dict(stored))
    assert stored["created_at"].tzinfo is not None
    again = store.lookup(session_id)
    assert again is not None and again.user == eve and again.csrf == made.csrf
    assert store.lookup(session_id + "x") is None and store.lookup("") is None
    other = SessionStore(engine, "another-pepper", idle=store.idle, lifetime=store.lifetime)
    assert other.lookup(session_id) is None  # keyed hashes

    # activity keeps a session alive up to its absolute end, never past it
    for _ in range(20):
        clock.now += timedelta(minutes=25)
        alive = store.lookup(session_id)
        assert alive is not None
        assert alive.idle_expires_at <= alive.expires_at
        if clock.now + timedelta(minutes=25) >= alive.expires_at:
            break
    clock.now = made.expires_at
    assert store.lookup(session_id) is None  # absolute
    assert store.lookup(session_id) is None  # and deleted

    idle_id, _ = store.create(eve)
    clock.now += TOUCH_EVERY / 2
    assert store.lookup(idle_id) is not None  # not written: too soon to touch
    clock.now += timedelta(minutes=30)
    assert store.lookup(idle_id) is None  # idle

    live_id, live = store.create(eve)
    store.remember_purpose(live, "case_review")
    remembered = store.lookup(live_id)
    assert remembered is not None and remembered.purpose == "case_review"
    users.revoke("eve")
    assert store.lookup(live_id) is None  # a revoked user's session ends

    bob, _ = users.add("bob", Role.auditor)
    bob_id, _ = store.create(bob)
    store.end(bob_id)
    assert store.lookup(bob_id) is None
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ui_sessions)).scalar() == 0
