"""The OpenAPI document, completed where the routes cannot say it themselves (error bodies,
413 on every body, the deployment's purposes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from serving.schemas import ErrorResponse


def complete_openapi(
    app: FastAPI, purposes: list[str], max_body_bytes: int
) -> Callable[[], dict[str, Any]]:
    """``app.openapi``, completed where the routes cannot say it themselves:

    - every error answer (4xx but 422, 5xx) has its body, `ErrorResponse`, where a route named
      the status code only;
    - every operation with a request body may answer 413 (``RISKCAST_MAX_BODY_BYTES``);
    - every ``purpose`` a request states (query parameter or body field) lists the purposes this
      deployment allows (``RISKCAST_PURPOSES``), which is what the service checks (else 422).
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = FastAPI.openapi(app)
        body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault(
            "ErrorResponse",
            ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}"),
        )
        too_large = f"the request body is larger than {max_body_bytes} bytes"
        for operations in spec.get("paths", {}).values():
            for operation in operations.values():
                if "requestBody" in operation:
                    responses = operation.setdefault("responses", {})
                    if "413" in responses:
                        responses["413"]["description"] += f"; or {too_large}"
                    else:
                        responses["413"] = {"description": too_large}
                for code, response in operation.get("responses", {}).items():
                    if code[0] in "45" and code != "422" and not response.get("content"):
                        response["content"] = dict(body)
                for parameter in operation.get("parameters", []):
                    if parameter.get("name") == "purpose":
                        _allow_only(parameter.get("schema", {}), purposes)
                request = operation.get("requestBody", {}).get("content", {})
                ref = request.get("application/json", {}).get("schema", {}).get("$ref", "")
                fields = components.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
                if "purpose" in fields:
                    _allow_only(fields["purpose"], purposes)
        app.openapi_schema = spec
        return spec

    return openapi


def _allow_only(schema: dict[str, Any], values: list[str]) -> None:
    """Narrow a string schema (or an ``anyOf`` holding one) to ``values``."""
    for option in [schema, *schema.get("anyOf", [])]:
        if option.get("type") == "string":
            option["enum"] = list(values)
