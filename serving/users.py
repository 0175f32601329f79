"""Service users: bearer tokens stored only as keyed SHA-256 hashes, revocable.

`riskcast users add NAME --role ROLE [--region R ...]` prints the token once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa

from features.errors import InputError, NotFoundError
from serving.db import users, utcnow


class UserConflict(InputError):
    """A user of that name exists already, or is revoked already (HTTP 409; CLI exit 2)."""

    http_status = 409


class Role(StrEnum):
    officer = "officer"
    data_scientist = "data_scientist"
    auditor = "auditor"
    admin = "admin"


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role
    regions: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_token(token: str, pepper: str) -> str:
    return hmac.new(pepper.encode("utf-8"), token.encode("utf-8"), hashlib.sha256).hexdigest()


def _user(row: sa.RowMapping) -> User:
    return User(
        id=int(row["id"]),
        name=str(row["name"]),
        role=Role(row["role"]),
        regions=tuple(json.loads(row["regions"])),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


class UserStore:
    """Users in the service database (SQLAlchemy Core)."""

    def __init__(self, engine: sa.Engine, pepper: str) -> None:
        self.engine = engine
        self._pepper = pepper

    def add(self, name: str, role: Role, regions: list[str] | None = None) -> tuple[User, str]:
        """Create a user; returns it with its token (shown once, stored only as a hash)."""
        name = name.strip()
        if not name or len(name) > 100:
            raise InputError("users add: NAME must have 1 to 100 characters")
        regions = sorted({r.strip() for r in regions or [] if r.strip()})
        if role is Role.officer and not regions:
            raise InputError("users add: an officer needs at least one --region")
        if role is not Role.officer and regions:
            raise InputError("users add: --region applies to officers only")
        token = "rc_" + secrets.token_urlsafe(32)
        values = {
            "name": name,
            "role": role.value,
            "regions": json.dumps(regions),
            "token_hash": hash_token(token, self._pepper),
            "created_at": utcnow(),
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(users).values(**values))
        except sa.exc.IntegrityError as exc:
            raise UserConflict(f"users add: a user named {name!r} already exists") from exc
        return self.get(name), token

    def get(self, name: str) -> User:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.name == name)).mappings().first()
        if row is None:
            raise NotFoundError(f"no user named {name!r}")
        return _user(row)

    def list(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(users).order_by(users.c.id)).mappings().all()
        return [_user(r) for r in rows]

    def revoke(self, name: str, *, once: bool = False) -> User:
        """Revoke at once (idempotent); with ``once``, `UserConflict` if already revoked."""
        self.get(name)  # NotFoundError for an unknown user
        with self.engine.begin() as conn:
            changed = conn.execute(
                sa.update(users)
                .where(users.c.name == name, users.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            ).rowcount
        if once and not changed:
            raise UserConflict(f"user {name!r} is revoked already")
        return self.get(name)

    def authenticate(self, token: str) -> User | None:
        """The active user holding this token, or None."""
        digest = hash_token(token, self._pepper)
        with self.engine.connect() as conn:
            row = conn.execute(_BY_TOKEN, {"digest": digest}).mappings().first()
        if row is None or row["revoked_at"] is not None:
            return None
        return _user(row)


# built once: constructing a statement costs more than running it on an indexed column
_BY_TOKEN = sa.select(users).where(users.c.token_hash == sa.bindparam("digest"))
