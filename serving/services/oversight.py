"""The stop switch: one function for the API's ``POST /admin/stop`` and the pages' stop form, so
a stop from a page is the very same act (and record) as a stop through the API."""

from __future__ import annotations

from serving.db import set_stop, stop_reason
from serving.state import ServiceState
from serving.users import User


def stop_scoring(state: ServiceState, by: User, reason: str) -> str | None:
    """Withdraw the model from serving at once (all workers share the switch); returns the
    reason as recorded."""
    set_stop(state.engine, stopped=True, by=by.name, reason=reason)
    return stop_reason(state.engine)


def resume_scoring(state: ServiceState, by: User) -> None:
    """Serve the champion again after a stop."""
    set_stop(state.engine, stopped=False, by=by.name, reason="")
