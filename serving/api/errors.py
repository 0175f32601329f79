"""Errors to HTTP, in one place: every `RiskcastError` (the service layer's refusals included)
is answered with its ``http_status``, and the few answers FastAPI would get wrong are fixed.

- a `RiskcastError`: ``{"detail": message, "error": class name}``; a `FieldError` (a broken
  rule naming a field) is a 422 shaped like FastAPI's validation errors, so clients read it
  like any malformed field; 5xx are logged;
- the service database unreachable (`sqlalchemy.exc.OperationalError`): 503 ``StoreError``;
- a JSON body that cannot even be decoded (not UTF-8, nested too deep): 422, not FastAPI's 400;
- 422s whose input or keys JSON cannot carry (lone surrogates, NaN): escaped, not a 500.

The pages show the same errors as HTML error pages (`serving.ui.app` wraps these handlers).
"""

from __future__ import annotations

import logging
import math
from typing import Any, cast

import sqlalchemy as sa
from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import HTTPExceptionHandler

from riskcast.errors import FieldError, RiskcastError

log = logging.getLogger("riskcast.serving")


def error_content(exc: RiskcastError) -> dict[str, Any]:
    """The JSON body answering ``exc`` (with its ``http_status``)."""
    if isinstance(exc, FieldError):
        return {"detail": json_safe(exc.errors())}
    return {"detail": json_safe(str(exc)), "error": type(exc).__name__}


def install_error_handlers(app: FastAPI) -> None:
    """The riskcast errors' and the database's handlers; call before the pages wrap them."""

    @app.exception_handler(RiskcastError)
    async def _riskcast_error(request: Request, exc: RiskcastError) -> JSONResponse:
        if exc.http_status >= 500:
            log.error("%s on %s: %s", type(exc).__name__, request.url.path, exc)
        return JSONResponse(status_code=exc.http_status, content=error_content(exc))

    @app.exception_handler(sa.exc.OperationalError)
    async def _database_down(request: Request, exc: sa.exc.OperationalError) -> JSONResponse:
        log.error("database unavailable on %s: %s", request.url.path, exc)
        return JSONResponse(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            content={"detail": "the service database is unavailable", "error": "StoreError"},
        )


def finish_error_handlers(app: FastAPI) -> None:
    """Wrap the HTTP-exception and validation handlers in place (the pages' HTML ones, which
    hand API paths to FastAPI's JSON ones): call after the pages installed theirs."""
    fallback = cast(HTTPExceptionHandler, app.exception_handlers[StarletteHTTPException])
    app.add_exception_handler(StarletteHTTPException, _undecodable_body_is_422(fallback))
    invalid = cast(HTTPExceptionHandler, app.exception_handlers[RequestValidationError])
    app.add_exception_handler(RequestValidationError, _encodable_errors(invalid))


def _undecodable_body_is_422(fallback: HTTPExceptionHandler) -> HTTPExceptionHandler:
    """FastAPI answers 400 when a JSON body cannot even be decoded (not UTF-8, nested too
    deep); it is a malformed body like any other, so it is a 422 naming the body."""

    async def handler(request: Request, exc: Exception) -> Response:
        if (
            isinstance(exc, StarletteHTTPException)
            and exc.status_code == status.HTTP_400_BAD_REQUEST
            and isinstance(exc.__cause__, (ValueError, RecursionError))
        ):
            cause = exc.__cause__
            problem = (
                "not UTF-8"
                if isinstance(cause, UnicodeDecodeError)
                else "too deep"
                if isinstance(cause, RecursionError)
                else "unreadable"  # e.g. a number of more than 4,300 digits
            )
            return JSONResponse(
                status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
                content={
                    "detail": [
                        {
                            "loc": ["body"],
                            "msg": f"malformed JSON ({problem})",
                            "type": "json_invalid",
                        }
                    ]
                },
            )
        if isinstance(exc, StarletteHTTPException):
            exc.detail = json_safe(exc.detail)
        reply = fallback(request, exc)
        return await reply if not isinstance(reply, Response) else reply

    return handler


def _encodable_errors(handler: HTTPExceptionHandler) -> HTTPExceptionHandler:
    """The 422 handler (the pages' HTML one, which hands API paths to FastAPI's JSON one), given
    errors that can be encoded. FastAPI's 422 echoes the input and names keys in ``loc``: a lone
    surrogate or a NaN there could not be encoded, and the answer was a 500."""

    async def safe(request: Request, exc: Exception) -> Response:
        if isinstance(exc, RequestValidationError):
            errors = json_safe(jsonable_encoder(exc.errors()))
            exc = RequestValidationError(errors, body=exc.body)
        reply = handler(request, exc)
        return await reply if not isinstance(reply, Response) else reply

    return safe


def json_safe(value: Any) -> Any:
    """``value`` with what JSON cannot carry made printable: text that is not valid Unicode
    (lone surrogates, which a JSON body can hold as ``"\\ud800"``) escaped as ``\\ud800``,
    numbers that are not finite (``NaN``, ``Infinity``, which Python's JSON parser accepts) as
    text. Error answers name fields and echo input; either would fail to encode (a 500)."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
