"""Checks of look-alike user names, run on SQLite (unit) and PostgreSQL (integration)."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from riskcast.errors import NotFoundError
from serving.db import users
from serving.users import Role, UserConflict, UserStore

LOOK_ALIKES = [
    "DEMO-ADMIN",  # case
    "Demo-Admin",
    "ｄｅｍｏ－ａｄｍｉｎ",  # full-width (compatibility variants)
    "\u217eemo-admi\u207f",  # small roman numeral five hundred, superscript n
    "demo\u200b-admin",  # zero-width space: invisible
    "de\u00admo-admin",  # soft hyphen: invisible
]


def check_look_alikes_are_refused(store: UserStore) -> None:
    admin, token = store.add("demo-admin", Role.admin)
    for name in LOOK_ALIKES:
        with pytest.raises(UserConflict) as refused:
            store.add(name, Role.admin)
        assert refused.value.existing == "demo-admin"
        assert str(refused.value) == (
            f"users add: a user named 'demo-admin' already exists; {name!r} differs from it "
            "only by case or by look-alike characters"
        )
    with pytest.raises(UserConflict, match=r"a user named 'demo-admin' already exists$"):
        store.add("demo-admin", Role.auditor)
    # names are kept as given, and distinct names stay distinct
    straße, _ = store.add("Straße", Role.auditor)
    assert straße.name == "Straße"
    with pytest.raises(UserConflict) as refused:
        store.add("STRASSE", Role.auditor)
    assert refused.value.existing == "Straße"
    for name in ("demo-admin-2", "demoadmin", "demo_admin"):
        assert store.add(name, Role.auditor)[0].name == name
    # a revoked user's name is still taken, look-alikes included
    store.revoke("Straße")
    with pytest.raises(UserConflict):
        store.add("strasse", Role.auditor)
    # tokens authenticate, not names: nothing changed there
    assert store.authenticate(token) == admin
    # lookups are by the exact name, and a miss names the look-alike
    with pytest.raises(
        NotFoundError, match=r"no user named 'DEMO-ADMIN' \(did you mean 'demo-admin'\?\)"
    ):
        store.revoke("DEMO-ADMIN")
    assert store.get("demo-admin").active
    with store.engine.connect() as conn:
        names = conn.execute(sa.select(users.c.name).order_by(users.c.id)).scalars().all()
    assert names == ["demo-admin", "Straße", "demo-admin-2", "demoadmin", "demo_admin"]


def check_look_alikes_added_at_once_make_one_user(store: UserStore, threads: int = 6) -> None:
    """Without the adds serialised, each would pass the check before any of them commits."""
    names = [
        "ops-lead",
        "OPS-LEAD",
        "Ops-Lead",
        "ｏｐｓ－ｌｅａｄ",
        "ops\u200b-lead",
        "op\u00ads-lead",
    ]
    names = names[:threads]
    start = threading.Barrier(len(names))
    made: list[str] = []
    refused: list[str] = []

    def add(name: str) -> None:
        start.wait()
        try:
            made.append(store.add(name, Role.auditor)[0].name)
        except UserConflict as exc:
            refused.append(str(exc.existing))

    workers = [threading.Thread(target=add, args=(n,)) for n in names]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(made) == 1, made
    assert refused == made * (len(names) - 1)
