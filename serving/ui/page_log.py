"""The access log of a page: entries of the service functions a page calls wait until the
page knows what it answers, and are written (before it answers) with that status."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from fastapi import status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from riskcast.errors import RiskcastError
from serving.state import AccessLogWriter

log = logging.getLogger("riskcast.serving.ui")
R = TypeVar("R", bound=Response)


class PageAccessLog:
    """The access log as a page hands it to the API's functions: their entries wait until the
    page knows what it answers, and are written (before it answers) with that status.

    Why: the API's functions log the status *they* answer (200), but a page may answer
    otherwise: a 404 for an unknown person, or an error raised after the function returned.
    Entries recording a refusal (a 403 for another region) keep their status."""

    def __init__(self, log: AccessLogWriter) -> None:
        self._log = log
        self.pending: list[dict[str, Any]] = []

    def append(self, **entry: Any) -> None:
        self.pending.append(entry)

    def answer(self, reply: R) -> R:
        """Write the entries with the status of ``reply``; ``reply`` is served afterwards."""
        self._write(reply.status_code)
        return reply

    def _write(self, answered: int) -> None:
        pending, self.pending = self.pending, []
        for entry in pending:
            kept = entry["status"] if not 200 <= entry["status"] < 300 else answered
            self._log.append(**{**entry, "status": kept})


def answered_status(exc: BaseException) -> int:
    """The status the app answers for an exception leaving a page."""
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code
    if isinstance(exc, RequestValidationError):
        return status.HTTP_422_UNPROCESSABLE_CONTENT
    if isinstance(exc, RiskcastError):
        return exc.http_status
    if isinstance(exc, sa.exc.OperationalError):
        return status.HTTP_503_SERVICE_UNAVAILABLE
    return status.HTTP_500_INTERNAL_SERVER_ERROR


@contextmanager
def page_access_log(access: AccessLogWriter) -> Iterator[PageAccessLog]:
    """A `PageAccessLog` for one page; when the page fails, its entries are written with the
    error's status (a failure to write them then is logged and the page's error stands)."""
    page_log = PageAccessLog(access)
    try:
        yield page_log
    except Exception as exc:
        try:
            page_log._write(answered_status(exc))
        except Exception:
            log.exception("writing the access log of a failed page failed")
        raise
    if page_log.pending:  # a page must end with `answer`: nothing is served unlogged
        raise RuntimeError("a page read person data without answering through its access log")
