"""Admins manage users over HTTP (issue 5, section 2): list, create (token once), revoke."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serving.app import create_app
from tests.service_helpers import AsgiClient, ServiceEnv, copy_home, serve, settings_for

USERS = "/v1/admin/users"


@pytest.fixture(scope="module")
def home(service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the service home: the users created and revoked here stay here."""
    copy = tmp_path_factory.mktemp("admin") / "home"
    copy_home(service_env.home, copy)
    return copy


@pytest.fixture(scope="module")
def c(home: Path) -> Iterator[AsgiClient]:
    with serve(create_app(settings_for(home))) as client:
        yield client


@pytest.fixture
def admin(service_env: ServiceEnv) -> str:
    return service_env.tokens["root"]


def locs(reply: Any) -> list[list[str | int]]:
    return [d["loc"] for d in reply.json()["detail"]]


def test_admin_creates_an_officer_who_scores_in_their_region_until_revoked(
    c: AsgiClient, service_env: ServiceEnv, admin: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="riskcast.serving.admin")
    made = c.post(
        USERS,
        json_body={"name": " nina ", "role": "officer", "regions": ["AST", " AST"]},
        token=admin,
    )
    assert made.status_code == 201, made.text
    body = made.json()
    token = body.pop("token")
    assert token.startswith("rc_")
    assert body["created_at"].endswith("Z")
    assert {k: v for k, v in body.items() if k != "created_at"} == {
        "name": "nina",
        "role": "officer",
        "regions": ["AST"],
        "revoked_at": None,
        "active": True,
    }

    ast, shy = service_env.persons["AST"][:2], service_env.persons["SHY"][:1]
    scores = c.post("/v1/scores", json_body={"ids": ast, "purpose": "case_review"}, token=token)
    assert scores.status_code == 200, scores.text
    assert [r["status"] for r in scores.json()["results"]] == ["scored", "scored"]
    other = c.post("/v1/scores", json_body={"ids": shy, "purpose": "case_review"}, token=token)
    # another region's person is answered like an unknown id (and logged as refused)
    assert other.status_code == 200, other.text
    assert [(r["status"], r["probability"]) for r in other.json()["results"]] == [("unknown", None)]

    listing = c.get(USERS, token=admin)
    assert listing.status_code == 200
    [nina] = [u for u in listing.json()["users"] if u["name"] == "nina"]
    assert nina == {**body, "revoked_at": None}
    assert token not in listing.text and "hash" not in listing.text and "rc_" not in listing.text
    names = [u["name"] for u in listing.json()["users"]]
    assert names[:5] == ["olga", "oleg", "ada", "dan", "root"]  # oldest first

    revoked = c.post(f"{USERS}/nina/revoke", token=admin)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"].endswith("Z") and revoked.json()["active"] is False
    after = c.post("/v1/scores", json_body={"ids": ast, "purpose": "case_review"}, token=token)
    assert after.status_code == 401
    [nina] = [u for u in c.get(USERS, token=admin).json()["users"] if u["name"] == "nina"]
    assert nina["revoked_at"] == revoked.json()["revoked_at"]

    again = c.post(f"{USERS}/nina/revoke", token=admin)
    assert again.status_code == 409 and "revoked already" in again.json()["detail"]

    messages = [r.getMessage() for r in caplog.records if r.name == "riskcast.serving.admin"]
    assert "user 'nina' created by admin 'root': role=officer regions=AST" in messages
    assert "user 'nina' revoked by admin 'root'" in messages


def test_an_admin_made_over_http_manages_users_too(c: AsgiClient, admin: str) -> None:
    made = c.post(USERS, json_body={"name": "ines", "role": "admin"}, token=admin)
    assert made.status_code == 201, made.text
    assert made.json()["regions"] == []
    ines = made.json()["token"]
    aud = c.post(USERS, json_body={"name": "unit/7", "role": "auditor", "regions": []}, token=ines)
    assert aud.status_code == 201, aud.text
    assert c.get("/v1/ledger", token=aud.json()["token"]).status_code == 200
    # a name holding "/" is revoked through its path all the same
    gone = c.post(f"{USERS}/unit/7/revoke", token=ines)
    assert gone.status_code == 200, gone.text
    assert c.get("/v1/ledger", token=aud.json()["token"]).status_code == 401
    # nobody revokes themself (there is always an admin left who can act)
    me = c.post(f"{USERS}/ines/revoke", token=ines)
    assert me.status_code == 409
    assert me.json()["detail"].startswith("you cannot revoke your own token")
    assert c.get(USERS, token=ines).status_code == 200  # still an admin
    assert c.post(f"{USERS}/ines/revoke", token=admin).status_code == 200
    assert c.get(USERS, token=ines).status_code == 401


@pytest.mark.parametrize("user", ["olga", "ada", "dan"])
def test_only_admins_manage_users(c: AsgiClient, service_env: ServiceEnv, user: str) -> None:
    token = service_env.tokens[user]
    new = {"name": f"by-{user}", "role": "auditor"}
    for reply in (
        c.get(USERS, token=token),
        c.post(USERS, json_body=new, token=token),
        c.post(f"{USERS}/oleg/revoke", token=token),
    ):
        assert reply.status_code == 403, reply.text
        assert "admin" in reply.json()["detail"]
    for reply in (c.get(USERS), c.post(USERS, json_body=new), c.post(f"{USERS}/oleg/revoke")):
        assert reply.status_code == 401
    names = [u["name"] for u in c.get(USERS, token=service_env.tokens["root"]).json()["users"]]
    assert f"by-{user}" not in names
    assert c.get("/v1/risk-lists", token=service_env.tokens["oleg"]).status_code != 401


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"name": "x", "role": "officer"}, ["body", "regions"]),
        ({"name": "x", "role": "officer", "regions": [" "]}, ["body", "regions", 0]),
        ({"name": "x", "role": "officer", "regions": ["A" * 65]}, ["body", "regions", 0]),
        ({"name": "x", "role": "officer", "regions": ["A\x00"]}, ["body", "regions", 0]),
        ({"name": "x", "role": "auditor", "regions": ["AST"]}, ["body", "regions"]),
        ({"name": "x", "role": "admin", "regions": ["AST"]}, ["body", "regions"]),
        ({"name": "x", "role": "king"}, ["body", "role"]),
        ({"name": "x"}, ["body", "role"]),
        ({"name": "  ", "role": "auditor"}, ["body", "name"]),
        ({"name": "n" * 101, "role": "auditor"}, ["body", "name"]),
        ({"name": "a\x00b", "role": "auditor"}, ["body", "name"]),
        ({"role": "auditor"}, ["body", "name"]),
        ({"name": "x", "role": "auditor", "token": "rc_mine"}, ["body", "token"]),
    ],
)
def test_bad_users_are_422_naming_the_field(
    c: AsgiClient, admin: str, body: dict[str, Any], loc: list[str | int]
) -> None:
    r = c.post(USERS, json_body=body, token=admin)
    assert r.status_code == 422, r.text
    assert loc in locs(r)
    assert all(u["name"] != "x" for u in c.get(USERS, token=admin).json()["users"])


def test_a_taken_name_is_409_naming_it(c: AsgiClient, admin: str) -> None:
    for name in ("oleg", " oleg "):
        r = c.post(USERS, json_body={"name": name, "role": "auditor"}, token=admin)
        assert r.status_code == 409, r.text
        assert r.json()["detail"] == "name: a user named 'oleg' already exists"
    [oleg] = [u for u in c.get(USERS, token=admin).json()["users"] if u["name"] == "oleg"]
    assert (oleg["role"], oleg["regions"], oleg["active"]) == ("officer", ["SHY"], True)


def test_revoking_an_unknown_user_is_404(c: AsgiClient, admin: str) -> None:
    r = c.post(f"{USERS}/nobody-at-all/revoke", token=admin)
    assert r.status_code == 404 and "nobody-at-all" in r.json()["detail"]
    assert c.post(f"{USERS}/a\x00/revoke", token=admin).status_code == 422
    assert c.post(f"{USERS}/{'n' * 101}/revoke", token=admin).status_code == 422


@pytest.mark.parametrize("name", ["OLEG", "Oleg", "ｏｌｅｇ", "ol\u200beg", " OLEG "])
def test_a_look_alike_name_is_409_naming_the_existing_user(
    c: AsgiClient, admin: str, name: str
) -> None:
    """Names that differ only by case or by look-alike characters (full-width, invisible) would
    read as one name in the access log and on the pages; the first one keeps it."""
    r = c.post(USERS, json_body={"name": name, "role": "admin"}, token=admin)
    assert r.status_code == 409, r.text
    assert r.json()["detail"] == (
        f"name: a user named 'oleg' already exists; {name.strip()!r} differs from it only by "
        "case or by look-alike characters"
    )
    names = [u["name"] for u in c.get(USERS, token=admin).json()["users"]]
    assert names.count("oleg") == 1 and name.strip() not in names
