"""Server-side sessions of the pages: an opaque random id in the cookie, the rest in a table.

Why not the bearer token in the cookie (as the pages first did): the token is a long-lived API
credential, so a stolen cookie was an API key, a logout could not end it, and a CSRF token
derived from it never changed. A session id is worth nothing outside the pages, ends at logout
(its row is deleted), after ``RISKCAST_UI_SESSION_IDLE_SECONDS`` without a request and
``RISKCAST_UI_SESSION_MAX_SECONDS`` after its login, and when its user is revoked (the user is
joined on every lookup). Each login gets a new id (no fixation) and a new random CSRF token.

Only a keyed hash of the id is stored (HMAC-SHA256 with the token pepper, like the tokens): a
reader of the table cannot take over a session. The table lives in the service database beside
``service_users`` but in its own `sqlalchemy.MetaData`, created when the store is opened.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from riskcast.clock import utcnow
from serving.db import UtcDateTime, users
from serving.users import Role, User

metadata = sa.MetaData()

ui_sessions = sa.Table(
    "service_ui_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, nullable=False, index=True),  # service_users.id
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("purpose", sa.String(64), nullable=True),  # the last one chosen in this session
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_seen_at", UtcDateTime(), nullable=False),
    sa.Column("idle_expires_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),  # absolute
)

TOUCH_EVERY = timedelta(seconds=30)
"""``last_seen_at`` is written at most this often (a page view is not always a write); the idle
limit may therefore end a session up to this much early."""
MAX_ID_CHARS = 100

_LOOKUP = (
    sa.select(
        ui_sessions,
        users.c.name,
        users.c.role,
        users.c.regions,
        users.c.created_at.label("user_created_at"),
        users.c.revoked_at,
    )
    .join(users, users.c.id == ui_sessions.c.user_id)
    .where(ui_sessions.c.id_hash == sa.bindparam("digest"))
)


@dataclass(frozen=True)
class Session:
    """A live page session (never its id: only the cookie holds that)."""

    id_hash: str
    user: User
    csrf: str
    purpose: str | None
    created_at: datetime
    last_seen_at: datetime
    idle_expires_at: datetime
    expires_at: datetime


class SessionStore:
    """Page sessions in the service database (SQLAlchemy Core, SQLite or PostgreSQL)."""

    def __init__(
        self,
        engine: sa.Engine,
        pepper: str,
        *,
        idle: timedelta,
        lifetime: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self._pepper = pepper.encode("utf-8")
        self.idle, self.lifetime, self._clock = idle, lifetime, clock
        try:
            metadata.create_all(engine)
        except sa.exc.DatabaseError:  # another worker created it meanwhile: check again
            metadata.create_all(engine)

    def digest(self, session_id: str) -> str:
        return hmac.new(self._pepper, b"session|" + session_id.encode(), hashlib.sha256).hexdigest()

    def create(self, user: User) -> tuple[str, Session]:
        """A new session for ``user``: its id (for the cookie only) and the session."""
        now = self._clock()
        session_id = secrets.token_urlsafe(32)
        row = {
            "id_hash": self.digest(session_id),
            "user_id": user.id,
            "csrf": secrets.token_hex(32),
            "purpose": None,
            "created_at": now,
            "last_seen_at": now,
            "idle_expires_at": min(now + self.idle, now + self.lifetime),
            "expires_at": now + self.lifetime,
        }
        with self.engine.begin() as conn:
            conn.execute(  # housekeeping: ended sessions need not stay
                sa.delete(ui_sessions).where(
                    sa.or_(ui_sessions.c.expires_at <= now, ui_sessions.c.idle_expires_at <= now)
                )
            )
            conn.execute(sa.insert(ui_sessions).values(**row))
        return session_id, _session(row, user)

    def lookup(self, session_id: str | None) -> Session | None:
        """The live session behind a cookie value, or None (unknown, ended, expired, or its
        user revoked; an expired or revoked one is deleted on the way)."""
        if not session_id or len(session_id) > MAX_ID_CHARS:
            return None
        digest = self.digest(session_id)
        with self.engine.connect() as conn:
            row = conn.execute(_LOOKUP, {"digest": digest}).mappings().first()
        if row is None:
            return None
        now = self._clock()
        if row["revoked_at"] is not None or now >= row["expires_at"]:
            self.end_digest(digest)
            return None
        if now >= row["idle_expires_at"]:
            self.end_digest(digest)
            return None
        user = User(
            id=int(row["user_id"]),
            name=str(row["name"]),
            role=Role(row["role"]),
            regions=tuple(json.loads(row["regions"])),
            created_at=row["user_created_at"],
            revoked_at=None,
        )
        values = dict(row)
        if now - row["last_seen_at"] >= TOUCH_EVERY:
            values["last_seen_at"] = now
            values["idle_expires_at"] = min(now + self.idle, row["expires_at"])
            with self.engine.begin() as conn:
                conn.execute(
                    sa.update(ui_sessions)
                    .where(ui_sessions.c.id_hash == digest)
                    .values(
                        last_seen_at=values["last_seen_at"],
                        idle_expires_at=values["idle_expires_at"],
                    )
                )
        return _session(values, user)

    def remember_purpose(self, session: Session, purpose: str) -> None:
        """The purpose the officer chose, to pre-select it later in this session only."""
        if session.purpose == purpose:
            return
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(ui_sessions)
                .where(ui_sessions.c.id_hash == session.id_hash)
                .values(purpose=purpose)
            )

    def end(self, session_id: str | None) -> None:
        """Delete the session behind a cookie value (logout; a new login replacing it)."""
        if session_id and len(session_id) <= MAX_ID_CHARS:
            self.end_digest(self.digest(session_id))

    def end_digest(self, digest: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(ui_sessions).where(ui_sessions.c.id_hash == digest))


def _session(row: Mapping[str, Any], user: User) -> Session:
    return Session(
        id_hash=str(row["id_hash"]),
        user=user,
        csrf=str(row["csrf"]),
        purpose=None if row["purpose"] is None else str(row["purpose"]),
        created_at=row["created_at"],
        last_seen_at=row["last_seen_at"],
        idle_expires_at=row["idle_expires_at"],
        expires_at=row["expires_at"],
    )


_stores_lock = threading.Lock()


def store_for(
    holder: object, engine: sa.Engine, pepper: str, *, idle: int, lifetime: int
) -> SessionStore:
    """The session store of an app (kept on ``holder``, e.g. ``app.state``), opened on first
    use: the service's engine only exists once the app's lifespan has opened it."""
    store: SessionStore | None = getattr(holder, "ui_sessions", None)
    if store is not None and store.engine is engine:
        return store
    with _stores_lock:
        store = getattr(holder, "ui_sessions", None)
        if store is None or store.engine is not engine:
            store = SessionStore(
                engine, pepper, idle=timedelta(seconds=idle), lifetime=timedelta(seconds=lifetime)
            )
            setattr(holder, "ui_sessions", store)  # noqa: B010
    return store
