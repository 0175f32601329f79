"""Admins manage service users over HTTP, as `riskcast users add|list|revoke` does.

Tokens are shown once, in the answer that creates the user; only their keyed hash is stored and
no answer ever contains it. Every change is logged (logger ``riskcast.serving.admin``) and stays
visible in the users table itself (``created_at``, ``revoked_at``). The rules are the service
layer's (`serving.services.accounts`).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, status

from serving.api.deps import Admin, State
from serving.schemas import (
    NO_NUL,
    ErasureRequest,
    ErasureResponse,
    UserCreatedResponse,
    UserCreateRequest,
    UserOut,
    UsersResponse,
    error_responses,
)
from serving.services.accounts import create_account, revoke_account
from serving.services.erasures import erase
from serving.users import User

log = logging.getLogger("riskcast.serving.admin")
router = APIRouter(prefix="/v1/admin", tags=["admin"])

_ADMINS = {403: "admins only"}
UserName = Annotated[str, Path(min_length=1, max_length=100, pattern=NO_NUL)]


def _out(user: User) -> UserOut:
    return UserOut(
        name=user.name,
        role=user.role,
        regions=list(user.regions),
        created_at=user.created_at,
        revoked_at=user.revoked_at,
        active=user.active,
    )


@router.get(
    "/users", response_model=UsersResponse, responses=error_responses(401, 503, described=_ADMINS)
)
def list_users(admin: Admin, state: State) -> UsersResponse:
    """Every user, oldest first, revoked ones included (names, roles, regions, times)."""
    return UsersResponse(users=[_out(u) for u in state.users.list()])


@router.post(
    "/users",
    response_model=UserCreatedResponse,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(
        401,
        503,
        described={
            **_ADMINS,
            409: "a user of that name, or of one differing only by case or by look-alike "
            "characters, exists already (`name`)",
        },
    ),
)
def create_user(body: UserCreateRequest, admin: Admin, state: State) -> UserCreatedResponse:
    """Create a user; the answer holds their bearer token, the only time it is shown.

    Officers need at least one region, every other role none (422 naming `regions`). A name
    that is taken, or looks like one that is (`DEMO-ADMIN` beside `demo-admin`), is a 409
    naming the existing user."""
    user, token = create_account(state.users, body.name, body.role, body.regions)
    log.info(
        "user %r created by admin %r: role=%s regions=%s",
        user.name,
        admin.name,
        user.role.value,
        ",".join(user.regions) or "-",
    )
    return UserCreatedResponse(**_out(user).model_dump(), token=token)


@router.post(
    "/users/{name:path}/revoke",  # names may hold "/" (as %2F)
    response_model=UserOut,
    responses=error_responses(
        401,
        503,
        described={
            **_ADMINS,
            404: "no user of that name",
            409: "the user is revoked already, or is you (admins cannot revoke themselves)",
        },
    ),
)
def revoke_user(name: UserName, admin: Admin, state: State) -> UserOut:
    """Revoke a user's token at once: their next request is a 401."""
    user = revoke_account(state.users, name, admin)
    log.info("user %r revoked by admin %r", user.name, admin.name)
    return _out(user)


@router.post(
    "/erasures",
    response_model=ErasureResponse,
    responses=error_responses(
        401,
        503,
        described=_ADMINS,
    ),
)
def erase_person(body: ErasureRequest, admin: Admin, state: State) -> ErasureResponse:
    """Erase a person (as `riskcast erase`): from the online store, the score book and its
    explanations, decisions' text, future feature builds (an offline-store tombstone) and the
    access log's readers; an `erasure` ledger entry records it without the id. An empty
    reason, or one containing the person's id, is a 422 naming ``reason`` (the ledger keeps the
    reason forever)."""
    done = erase(state, admin, body.person_id, body.reason)
    log.info("person erased by admin %r as %s", admin.name, done.pseudonym)
    return done


__all__ = ["router"]
