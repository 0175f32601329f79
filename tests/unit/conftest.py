"""Fixtures shared by the unit tests."""

from tests.service_helpers import service_env

__all__ = ["service_env"]
