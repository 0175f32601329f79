"""The service's own tables on the real PostgreSQL, in a schema of their own (dropped after).

Users (tokens kept as keyed hashes, revocation), decisions and the per-unit summary, the stop
switch and the access log, through the code the service runs: `serving.users`, `serving.db`
and the app itself with ``RISKCAST_DATABASE_URL`` pointing at PostgreSQL. The schema is put
first on the connection's ``search_path`` (``options=-csearch_path=...`` in the URL), so every
table the app creates (service tables, access log, ledger, online store) lands in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from features.online.store import SqlOnlineStore
from riskcast.errors import InputError, NotFoundError
from serving.access_log import open_access_log
from serving.app import create_app
from serving.db import decisions, open_engine, service_state, users
from serving.settings import ServingSettings
from serving.state import load_directory
from serving.users import Role, UserStore, hash_token
from tests.integration.conftest import POSTGRES
from tests.service_helpers import ServiceEnv, service_env

pytestmark = pytest.mark.integration
__all__ = ["service_env"]  # the session fixture: a trained champion and a materialised home
PURPOSE = "case_review"


def url_in(schema: str) -> str:
    """The test database's URL with ``schema`` first on the search path."""
    url = sa.make_url(POSTGRES).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture
def engine(schema: str) -> Iterator[sa.Engine]:
    engine = open_engine(url_in(schema))
    yield engine
    engine.dispose()


def test_the_service_tables_are_created_in_the_schema(engine: sa.Engine, schema: str) -> None:
    assert engine.dialect.name == "postgresql"
    names = set(sa.inspect(engine).get_table_names(schema=schema))
    assert {users.name, decisions.name, service_state.name} <= names
    columns = {c["name"]: c["type"] for c in sa.inspect(engine).get_columns(users.name, schema)}
    assert isinstance(columns["created_at"], sa.DateTime) and columns["created_at"].timezone
    open_engine(url_in(schema)).dispose()  # opening again is idempotent


def test_users_add_authenticate_and_revoke_on_postgres(engine: sa.Engine) -> None:
    store = UserStore(engine, "a-pepper-for-the-test")
    officer, token = store.add(" eve ", Role.officer, ["SHY", "AST", " AST "])
    assert (officer.name, officer.role, officer.regions) == ("eve", Role.officer, ("AST", "SHY"))
    assert officer.created_at.tzinfo is not None and officer.active
    auditor, auditor_token = store.add("ada", Role.auditor)
    assert token != auditor_token and token.startswith("rc_")

    assert store.authenticate(token) == officer
    assert store.authenticate(auditor_token) == auditor
    assert store.authenticate(token + "x") is None
    assert UserStore(engine, "another-pepper").authenticate(token) is None  # keyed hashes

    with engine.connect() as conn:
        stored = conn.execute(sa.select(users.c.name, users.c.token_hash)).all()
    assert dict(stored)["eve"] == hash_token(token, "a-pepper-for-the-test")
    assert all(token not in str(row) and auditor_token not in str(row) for row in stored)

    with pytest.raises(InputError, match="already exists"):
        store.add("eve", Role.auditor)
    with pytest.raises(InputError, match="at least one --region"):
        store.add("olaf", Role.officer)
    with pytest.raises(NotFoundError):
        store.revoke("nobody")

    revoked = store.revoke("eve")
    assert revoked.revoked_at is not None and not revoked.active
    assert revoked.revoked_at.utcoffset() == timedelta(0)
    assert store.authenticate(token) is None
    assert store.revoke("eve").revoked_at == revoked.revoked_at  # idempotent
    assert store.authenticate(auditor_token) == auditor
    assert [u.name for u in store.list()] == ["eve", "ada"]


def test_postgres_refuses_nul_characters_in_text(engine: sa.Engine) -> None:
    """Why the service's text inputs refuse NUL (422): PostgreSQL would fail the insert."""
    with pytest.raises((sa.exc.DataError, ValueError)), engine.begin() as conn:
        conn.execute(
            sa.insert(service_state).values(
                key="x", value="a\x00b", changed_by="t", changed_at=sa.func.now()
            )
        )


@pytest.fixture
def app_on_postgres(
    service_env: ServiceEnv, schema: str
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = ServingSettings(
        home=service_env.home, database_url=url_in(schema), mlflow_tracking_uri=None
    )
    store = UserStore(open_engine(url_in(schema)), settings.token_pepper.get_secret_value())
    tokens = {
        "olga": store.add("olga", Role.officer, ["AST"])[1],
        "ada": store.add("ada", Role.auditor)[1],
        "root": store.add("root", Role.admin)[1],
    }
    store.engine.dispose()
    _materialise_on_postgres(service_env, schema)
    with TestClient(create_app(settings)) as client:
        yield client, tokens


def _materialise_on_postgres(service_env: ServiceEnv, schema: str) -> None:
    """The home's materialisation copied into the schema's online store, as `riskcast features
    materialize` with ``RISKCAST_DATABASE_URL`` on PostgreSQL would write it."""
    local = SqlOnlineStore(f"sqlite:///{(service_env.home / 'riskcast.sqlite').resolve()}")
    current = local.current()
    assert current is not None
    ids = load_directory(service_env.home).frame["person_id"].to_list()
    vectors = local.get_vectors(ids).drop("as_of", "spec_hash", "written_at")
    local.dispose()
    remote = SqlOnlineStore(url_in(schema))
    try:
        remote.materialize(vectors, current.as_of, current.spec_hash)
    finally:
        remote.dispose()


def _auth(tokens: dict[str, str], name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[name]}"}


def test_decisions_summary_stop_switch_and_access_log_on_postgres(
    app_on_postgres: tuple[TestClient, dict[str, str]], service_env: ServiceEnv, schema: str
) -> None:
    c, tokens = app_on_postgres
    state = c.app.state.riskcast  # type: ignore[attr-defined]
    assert state.engine.dialect.name == "postgresql"
    ast, shy = service_env.persons["AST"], service_env.persons["SHY"]

    made = [
        {"person_id": ast[0], "action": "contacted"},
        {"person_id": ast[1], "action": "disagreed", "reason": "knows the family"},
        {"person_id": ast[2], "action": "referred", "measure_id": "debt_counselling"},
        {"person_id": ast[0], "action": "no_action"},
    ]
    for body in made:
        r = c.post(
            "/v1/decisions", json={**body, "purpose": PURPOSE}, headers=_auth(tokens, "olga")
        )
        assert r.status_code == 201, r.text
        assert r.json()["recorded_at"].endswith("Z")
    refused = c.post(
        "/v1/decisions",
        json={"person_id": shy[0], "action": "contacted", "purpose": PURPOSE},
        headers=_auth(tokens, "olga"),
    )
    assert refused.status_code == 404  # answered like an unknown id; logged as 403
    nul = c.post(
        "/v1/decisions",
        json={"person_id": ast[3], "action": "disagreed", "reason": "x\x00", "purpose": PURPOSE},
        headers=_auth(tokens, "olga"),
    )
    assert nul.status_code == 422 and ["body", "reason"] in [d["loc"] for d in nul.json()["detail"]]

    with state.engine.connect() as conn:
        rows = conn.execute(sa.select(decisions).order_by(decisions.c.id)).mappings().all()
    assert [(r["person_id"], r["action"], r["override"]) for r in rows] == [
        (ast[0], "contacted", False),
        (ast[1], "disagreed", True),
        (ast[2], "referred", False),
        (ast[0], "no_action", False),
    ]
    assert all(r["recorded_at"].tzinfo is not None and r["officer"] == "olga" for r in rows)

    listing = c.get("/v1/decisions", headers=_auth(tokens, "ada"))
    assert listing.status_code == 200, listing.text
    body = listing.json()
    assert sum(u["decisions"] for u in body["units"]) == 4
    assert sum(u["overrides"] for u in body["units"]) == 1
    by_action: dict[str, int] = {}
    for unit in body["units"]:
        assert unit["region"] == "AST"
        for action, n in unit["by_action"].items():
            by_action[action] = by_action.get(action, 0) + n
    assert by_action == {"contacted": 1, "disagreed": 1, "referred": 1, "no_action": 1}
    assert [d["person_id"] for d in body["decisions"]] == [ast[0], ast[2], ast[1], ast[0]]
    overrides = c.get(
        "/v1/decisions", params={"overrides_only": True}, headers=_auth(tokens, "olga")
    )
    assert [d["reason"] for d in overrides.json()["decisions"]] == ["knows the family"]

    # the stop switch lives in the shared database
    stop = c.post("/v1/admin/stop", json={"reason": "drift found"}, headers=_auth(tokens, "root"))
    assert stop.status_code == 200 and stop.json()["stopped"] is True
    assert c.get("/readyz").status_code == 503
    assert "drift found" in c.get("/v1/admin/stop", headers=_auth(tokens, "root")).json()["reason"]
    assert c.post("/v1/admin/resume", headers=_auth(tokens, "root")).json()["stopped"] is False

    # revoking a user takes effect at once, through PostgreSQL
    UserStore(state.engine, state.settings.token_pepper.get_secret_value()).revoke("olga")
    assert c.get("/v1/decisions", headers=_auth(tokens, "olga")).status_code == 401

    # every read of person-level data went to the access log in the schema, chain intact
    log = open_access_log(state.settings.store_settings())
    try:
        entries = log.entries()
        assert log.verify().ok
    finally:
        log.dispose()
    summary = [(e.actor, e.action, e.status) for e in entries]
    assert summary == [
        *[("olga", "decision", 201)] * 4,
        ("olga", "decision", 403),
        ("ada", "decisions", 200),
        ("olga", "decisions", 200),
    ]
    assert entries[-2].persons == [ast[0], ast[2], ast[1]] and entries[-2].purpose == "oversight"
    assert all(e.at.tzinfo == UTC for e in entries)
    with state.engine.connect() as conn:
        where = conn.execute(
            sa.text("SELECT table_schema FROM information_schema.tables WHERE table_name = :t"),
            {"t": "access_log"},
        ).scalars()
        assert schema in set(where)


def test_admins_create_and_revoke_users_over_http_on_postgres(
    app_on_postgres: tuple[TestClient, dict[str, str]],
) -> None:
    c, tokens = app_on_postgres
    state = c.app.state.riskcast  # type: ignore[attr-defined]
    assert state.engine.dialect.name == "postgresql"
    made = c.post(
        "/v1/admin/users",
        json={"name": "nina", "role": "officer", "regions": ["SHY", "AST"]},
        headers=_auth(tokens, "root"),
    )
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert made.json()["regions"] == ["AST", "SHY"] and made.json()["created_at"].endswith("Z")
    assert c.get("/v1/decisions", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # the unique name is enforced by PostgreSQL too (IntegrityError -> 409, nothing written)
    taken = c.post(
        "/v1/admin/users", json={"name": "nina", "role": "auditor"}, headers=_auth(tokens, "root")
    )
    assert taken.status_code == 409 and taken.json()["detail"].startswith("name:")
    refused = c.post(
        "/v1/admin/users", json={"name": "ole", "role": "officer"}, headers=_auth(tokens, "olga")
    )
    assert refused.status_code == 403

    revoked = c.post("/v1/admin/users/nina/revoke", headers=_auth(tokens, "root"))
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert c.get("/v1/decisions", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    again = c.post("/v1/admin/users/nina/revoke", headers=_auth(tokens, "root"))
    assert again.status_code == 409
    assert c.post("/v1/admin/users/root/revoke", headers=_auth(tokens, "root")).status_code == 409

    listing = c.get("/v1/admin/users", headers=_auth(tokens, "root"))
    assert [(u["name"], u["active"]) for u in listing.json()["users"]] == [
        ("olga", True),
        ("ada", True),
        ("root", True),
        ("nina", False),
    ]
    with state.engine.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.name == "nina")).mappings().one()
    assert row["revoked_at"].tzinfo is not None and row["created_at"] < row["revoked_at"]
    assert row["token_hash"] == hash_token(token, state.settings.token_pepper.get_secret_value())
    assert token not in listing.text and row["token_hash"] not in listing.text
