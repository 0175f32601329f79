"""The API's dependencies, as ``Annotated`` types a route names in its signature: the service
state, the bearer token's user and the roles a route allows, the access log, the champion.

They are the HTTP edge: they answer 401/403/503 themselves. The rules of person-data reads
(purposes, regions) are the service layer's (`serving.services.policy`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serving.db import stop_reason
from serving.state import AccessLogWriter, LoadedModel, ServiceState
from serving.users import Role, User

_bearer = HTTPBearer(auto_error=False, description="token from `riskcast users add`")


async def get_state(request: Request) -> ServiceState:
    state: ServiceState | None = getattr(request.app.state, "riskcast", None)
    if state is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the service is starting")
    return state


State = Annotated[ServiceState, Depends(get_state)]


# Dependencies without I/O are async (a sync one costs a thread-pool hop per request); the
# two that read the database (token, stop switch) stay sync, so that a slow database blocks a
# pool thread, not the event loop.
def current_user(
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    unauthorized = HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "missing or invalid bearer token",
        headers={"WWW-Authenticate": "Bearer"},
    )
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized
    user = state.users.authenticate(credentials.credentials)
    if user is None:
        raise unauthorized
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def require(*roles: Role) -> Callable[[User], Awaitable[User]]:
    """A dependency: the current user, if their role is one of ``roles`` (else 403)."""
    allowed = {r.value for r in roles}
    # async (no I/O): a sync dependency would cost a thread-pool hop on every request

    async def check(user: CurrentUser) -> User:
        if user.role.value not in allowed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {user.role.value!r} may not do this (allowed: {', '.join(sorted(allowed))})",
            )
        return user

    return check


Officer = Annotated[User, Depends(require(Role.officer))]
Admin = Annotated[User, Depends(require(Role.admin))]
Overseer = Annotated[User, Depends(require(Role.officer, Role.auditor, Role.admin))]
Auditor = Annotated[User, Depends(require(Role.auditor, Role.admin))]
AnyRole = CurrentUser


async def get_access_log(state: State) -> AccessLogWriter:
    """The access log; person-level reads are refused (503) when it cannot be written."""
    if state.access_log is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the access log is not available: person-level data cannot be served unlogged",
        )
    return state.access_log


AccessLog = Annotated[AccessLogWriter, Depends(get_access_log)]


def serving_model(state: State) -> LoadedModel:
    """The champion, unless none is loaded or the stop switch is on (503 with the reason)."""
    reason = stop_reason(state.engine)
    if reason is not None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"scoring is stopped: {reason}")
    if state.model is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"no model to serve: {state.model_error}"
        )
    if state.store is None or state.directory is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(state.store_error))
    return state.model


Champion = Annotated[LoadedModel, Depends(serving_model)]
