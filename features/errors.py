"""One error hierarchy for riskcast; the CLI and the service map it to exit codes / HTTP once."""

from __future__ import annotations


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
