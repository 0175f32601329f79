"""Hostile text in JSON bodies, route by route: lone surrogates, NUL and overlong strings, and
numbers JSON does not have. Each is a 422 naming the field, never a 500.

A lone surrogate was a 500 on every JSON route (`{"ids": ["\\ud800"], ...}` on `/v1/scores`,
`/v1/decisions`, `/v1/admin/users`): the JSON is valid, the text is not Unicode, and FastAPI's
422 echoes the input, which then could not be encoded as UTF-8. The fuzzing in
`test_service_schemathesis.py` puts the same texts (`HOSTILE`) into generated bodies.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from tests.hostile_text import HOSTILE
from tests.service_helpers import ServiceEnv, copy_home, settings_for

OFFICER, ADMIN = "olga", "root"


def auth(env: ServiceEnv, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {env.tokens[name]}"}


def locs(reply: Any) -> list[list[str | int]]:
    return [d["loc"] for d in reply.json()["detail"]]


@pytest.fixture(scope="module")
def client(
    service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("hostile-text") / "home"
    copy_home(service_env.home, home)
    with TestClient(create_app(settings_for(home))) as c:
        yield c


HOSTILE_FIELDS: list[tuple[str, str, dict[str, Any], list[str | int]]] = [
    # each body's "?" is replaced by each HOSTILE text
    ("/v1/scores", OFFICER, {"ids": ["?"], "purpose": "case_review"}, ["body", "ids", 0]),
    ("/v1/scores", OFFICER, {"ids": ["p1"], "purpose": "?"}, ["body", "purpose"]),
    (
        "/v1/decisions",
        OFFICER,
        {"person_id": "?", "action": "contacted", "purpose": "case_review"},
        ["body", "person_id"],
    ),
    (
        "/v1/decisions",
        OFFICER,
        {"person_id": "p", "action": "?", "purpose": "case_review"},
        ["body", "action"],
    ),
    (
        "/v1/decisions",
        OFFICER,
        {"person_id": "p", "action": "referred", "measure_id": "?", "purpose": "case_review"},
        ["body", "measure_id"],
    ),
    (
        "/v1/decisions",
        OFFICER,
        {"person_id": "p", "action": "disagreed", "reason": "?", "purpose": "case_review"},
        ["body", "reason"],
    ),
    (
        "/v1/decisions",
        OFFICER,
        {"person_id": "p", "action": "contacted", "purpose": "?"},
        ["body", "purpose"],
    ),
    ("/v1/admin/stop", ADMIN, {"reason": "?"}, ["body", "reason"]),
    ("/v1/admin/users", ADMIN, {"name": "?", "role": "auditor"}, ["body", "name"]),
    ("/v1/admin/users", ADMIN, {"name": "x", "role": "?"}, ["body", "role"]),
    (
        "/v1/admin/users",
        ADMIN,
        {"name": "x", "role": "officer", "regions": ["?"]},
        ["body", "regions", 0],
    ),
]


def _fill(value: Any, text: str) -> Any:
    if value == "?":
        return text
    if isinstance(value, list):
        return [_fill(v, text) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, text) for k, v in value.items()}
    return value


@pytest.mark.parametrize(
    "text", HOSTILE, ids=["surrogate", "trail", "pair-reversed", "nul", "long"]
)
@pytest.mark.parametrize(("path", "user", "template", "loc"), HOSTILE_FIELDS)
def test_hostile_text_is_422_naming_the_field_never_500(
    client: TestClient,
    service_env: ServiceEnv,
    text: str,
    path: str,
    user: str,
    template: dict[str, Any],
    loc: list[str | int],
) -> None:
    """A lone surrogate was a 500 on every JSON route: FastAPI's 422 echoes the input, which
    cannot be encoded as UTF-8. The answer names the field and escapes what it echoes."""
    body = json.dumps(_fill(template, text)).encode()  # ASCII: "\ud800" as an escape
    r = client.post(
        path,
        content=body,
        headers={**auth(service_env, user), "Content-Type": "application/json"},
    )
    assert r.status_code == 422, (r.status_code, r.text)
    assert loc in locs(r)
    r.content.decode("utf-8")  # valid UTF-8, hence valid JSON text
    assert all(ord(c) < 0xD800 or ord(c) > 0xDFFF for c in r.text)


@pytest.mark.parametrize(
    ("path", "user", "body", "loc", "echo"),
    [
        # a lone surrogate as a key: refused as an unknown field, named escaped
        (
            "/v1/scores",
            OFFICER,
            '{"ids": ["p1"], "purpose": "case_review", "\\ud800": 1}',
            ["body"],
            "\\ud800",
        ),
        (
            "/v1/admin/users",
            ADMIN,
            '{"name": "x", "role": "auditor", "\\udfff": 1}',
            ["body"],
            "\\udfff",
        ),
        # numbers JSON does not have but Python's parser reads: echoed, they were a 500 too
        (
            "/v1/scores",
            OFFICER,
            '{"ids": [NaN], "purpose": "case_review"}',
            ["body", "ids", 0],
            "nan",
        ),
        ("/v1/admin/stop", ADMIN, '{"reason": Infinity}', ["body", "reason"], "inf"),
        (
            "/v1/decisions",
            OFFICER,
            '{"person_id": -Infinity, "action": "contacted", "purpose": "case_review"}',
            ["body", "person_id"],
            "-inf",
        ),
    ],
)
def test_unencodable_keys_and_numbers_are_422_never_500(
    client: TestClient,
    service_env: ServiceEnv,
    path: str,
    user: str,
    body: str,
    loc: list[str | int],
    echo: str,
) -> None:
    r = client.post(
        path,
        content=body.encode(),
        headers={**auth(service_env, user), "Content-Type": "application/json"},
    )
    assert r.status_code == 422, (r.status_code, r.text)
    assert loc in locs(r)
    assert echo in [d.get("input") for d in r.json()["detail"]] or any(
        echo in map(str, d["loc"]) for d in r.json()["detail"]
    ), r.text
