"""The rules every read of person data follows, whichever door it came through (API or page):
a purpose this deployment allows, and an officer's regions (a refusal is itself logged)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from riskcast.errors import FieldError, ForbiddenError
from serving.state import AccessLogWriter, ServiceState
from serving.users import User


def check_purpose(state: ServiceState, purpose: str | None, loc: Sequence[str | int]) -> str:
    """``purpose`` if this deployment allows it (``RISKCAST_PURPOSES``), else a 422 naming
    ``loc``: person data is never read without a stated, allowed reason."""
    if not purpose:
        raise FieldError(loc, "a purpose is required to read person-level data")
    if purpose not in state.settings.purposes:
        raise FieldError(
            loc, f"purpose {purpose!r} is not allowed; use one of {state.settings.purposes}"
        )
    return purpose


def forbid_regions(
    user: User,
    outside: list[str],
    log: AccessLogWriter,
    *,
    purpose: str,
    action: str,
    params: dict[str, Any],
    model_version: str | None,
) -> None:
    """403 when an officer asks for persons or units outside their regions; the attempt is
    appended to the access log first (status 403), so auditors see it."""
    if not outside:
        return
    log.append(
        actor=user.name,
        role=user.role.value,
        purpose=purpose,
        action=action,
        persons=outside,
        params=params,
        model_version=model_version,
        status=403,
    )
    raise ForbiddenError(
        f"{len(outside)} person(s) are outside your regions ({', '.join(user.regions)})"
    )


__all__ = ["check_purpose", "forbid_regions"]
