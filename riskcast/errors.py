"""One error hierarchy for riskcast; the CLI and the service map it to exit codes / HTTP once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class RiskcastError(Exception):
    """Base of every error riskcast raises on purpose; its message is meant for the user."""

    http_status: int = 500
    exit_code: int = 1


class ConfigError(RiskcastError):
    """A configuration file or setting is invalid."""

    http_status = 500
    exit_code = 2


class InputError(RiskcastError):
    """Input from a user or another system is invalid; the message names field, row or rule."""

    http_status = 422
    exit_code = 2


class FieldError(InputError):
    """A value the caller gave breaks a rule (422), naming the field as FastAPI's validation
    errors do (``loc``: ``["body", "reason"]``, ``["query", "tier"]``, ``["form", ...]``), so
    clients read a broken rule exactly like a malformed field."""

    def __init__(self, loc: Sequence[str | int], msg: str) -> None:
        super().__init__(msg)
        self.loc = list(loc)
        self.msg = msg

    def errors(self) -> list[dict[str, Any]]:
        """The 422 ``detail``: one error in FastAPI's shape."""
        return [{"loc": list(self.loc), "msg": self.msg, "type": "value_error"}]


class DeliveryRefused(InputError):
    """A delivery is refused whole (damaged manifest, wrong order, undefined columns)."""

    exit_code = 3


class NotFoundError(RiskcastError):
    """Something asked for does not exist (a table never delivered, an unknown person)."""

    http_status = 404
    exit_code = 4


class StoreError(RiskcastError):
    """The store is missing, locked by another process, or inconsistent."""

    http_status = 503
    exit_code = 5


class ForbiddenError(RiskcastError):
    """The caller may not read this (an officer asking for another region)."""

    http_status = 403
    exit_code = 2


class ConflictError(RiskcastError):
    """The request contradicts the state of things (a person outside the population, a name
    taken, a user revoked already)."""

    http_status = 409
    exit_code = 2
