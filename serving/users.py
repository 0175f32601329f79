"""Service users: bearer tokens stored only as keyed SHA-256 hashes, revocable.

`riskcast users add NAME --role ROLE [--region R ...]` prints the token once.

Names are kept as given, but a new name may not look like one that exists (revoked users
included): names are compared by `name_key` (NFKC, case-folded, without invisible format
characters), so ``demo-admin``, ``DEMO-ADMIN`` and ``ｄｅｍｏ－ａｄｍｉｎ`` (full-width) are one
name. Why: names are what people see (the access log's ``actor``, the pages, the user list),
and two users whose names read alike there could be mistaken for each other. Tokens, not names,
authenticate, so authentication does not change; `get` and `revoke` match the exact name (and
a miss names the look-alike, if any).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa

from riskcast.clock import utcnow
from riskcast.errors import InputError, NotFoundError
from serving.db import users


class UserConflict(InputError):
    """A user of that name exists already, or is revoked already (HTTP 409; CLI exit 2).

    ``existing`` is the name of the user that exists (as stored), when a name was taken."""

    http_status = 409

    def __init__(self, message: str, existing: str | None = None) -> None:
        super().__init__(message)
        self.existing = existing


def name_key(name: str) -> str:
    """The form under which two user names are the same name: Unicode compatibility
    normalisation (NFKC: full-width, ligatures, super- and subscripts, ...), case folding
    (NFKC again after it, which folding can undo) and no format characters (zero-width space,
    soft hyphen, ...), which cannot be seen."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return "".join(c for c in folded if unicodedata.category(c) != "Cf")


def taken_message(name: str, existing: str) -> str:
    """Why ``name`` cannot be added, naming the ``existing`` user it is (or looks like)."""
    if name == existing:
        return f"a user named {existing!r} already exists"
    return (
        f"a user named {existing!r} already exists; {name!r} differs from it only by case "
        "or by look-alike characters"
    )


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
        key = name_key(name)
        try:
            with self.engine.begin() as conn:
                _lock_for_adding(conn)
                names = conn.execute(sa.select(users.c.name)).scalars()
                existing = next((n for n in names if name_key(n) == key), None)
                if existing is not None:
                    raise UserConflict(
                        f"users add: {taken_message(name, existing)}", existing=existing
                    )
                conn.execute(sa.insert(users).values(**values))
        except sa.exc.IntegrityError as exc:  # the same name, added meanwhile without the lock
            raise UserConflict(f"users add: {taken_message(name, name)}", existing=name) from exc
        return self.get(name), token

    def get(self, name: str) -> User:
        """The user of exactly this name (`NotFoundError` naming a look-alike, if any)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.name == name)).mappings().first()
            if row is None:
                key = name_key(name)
                names = conn.execute(sa.select(users.c.name)).scalars()
                alike = next((n for n in names if name_key(n) == key), None)
                hint = f" (did you mean {alike!r}?)" if alike is not None else ""
                raise NotFoundError(f"no user named {name!r}{hint}")
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


def open_users() -> UserStore:
    """The deployment's users (the service database per the serving settings), for commands
    outside the service: the command root hands it to the fairness stage, whose overrides must
    be made by an authenticated auditor (`riskcast.auth.Authenticator`)."""
    from serving.db import open_engine
    from serving.settings import load_serving_settings

    settings = load_serving_settings()
    if settings.database_url is None:
        settings.home.mkdir(parents=True, exist_ok=True)
    engine = open_engine(settings.effective_database_url)
    return UserStore(engine, settings.token_pepper.get_secret_value())


def _lock_for_adding(conn: sa.Connection) -> None:
    """Serialise adding users until ``conn``'s transaction ends, so that two look-alike names
    added at once cannot both pass the check (the database cannot compare names by
    `name_key` itself). Reads go on meanwhile."""
    if conn.dialect.name == "postgresql":
        table = conn.dialect.identifier_preparer.format_table(users)
        conn.execute(sa.text(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))
    else:  # SQLite: a write, even of no row, holds the database's write lock until commit
        conn.execute(sa.update(users).where(sa.false()).values(name=users.c.name))


# built once: constructing a statement costs more than running it on an indexed column
_BY_TOKEN = sa.select(users).where(users.c.token_hash == sa.bindparam("digest"))
