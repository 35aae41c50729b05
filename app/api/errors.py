"""One shape for every error answer: {"detail": "<field>: <reason>", "field": "<field>"}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

# FastAPI's words for a body it could not decode (not UTF-8, or JSON nested too deeply)
_UNPARSABLE = "There was an error parsing the body"


class ApiError(Exception):
    """A request the server understood and refuses, with the field at fault."""

    def __init__(self, status: int, detail: str, field: str | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "field": self.field}


def from_value_error(exc: ValueError, prefix: str = "") -> ApiError:
    """The core raises 'field: reason'; keep the field, prefixed with where it sits."""
    message = str(exc)
    field, sep, _ = message.partition(":")
    known = sep and " " not in field.strip()
    field_path = f"{prefix}{field.strip()}" if known else (prefix.rstrip(".") or None)
    detail = (
        f"{prefix}{message}"
        if known
        else (f"{prefix.rstrip('.')}: {message}" if prefix else message)
    )
    return ApiError(422, detail, field_path)


_UNION_MEMBERS = ("bool", "int", "float", "str")  # no field of the API has these names


def _loc(loc: tuple[Any, ...]) -> str:
    # pydantic puts the union member tried ("list[float]", "bool") in the location: not a field
    parts = [
        str(p)
        for p in loc
        if p not in ("body", "query", "path", *_UNION_MEMBERS) and "[" not in str(p)
    ]
    return ".".join(parts) or "body"


def _field_and_reason(error: Any) -> tuple[str, str]:
    """One pydantic error as (field, reason). A model-level check raises "field: reason"
    (a ValueError, as the core does): the field named there is the one at fault."""
    field = _loc(tuple(error.get("loc", ())))
    reason = str(error.get("msg", "invalid"))
    if error.get("type") == "json_invalid":  # its location is a character offset
        return "body", f"malformed JSON ({error.get('ctx', {}).get('error', reason)})"
    if error.get("type") == "value_error":
        named, sep, rest = reason.removeprefix("Value error, ").partition(": ")
        if sep and named and " " not in named:
            return (named if field == "body" else f"{field}.{named}"), rest
    return field, reason


def validation_detail(errors: list[Any]) -> tuple[str, str]:
    """(detail, field) from pydantic's error list: the first error, in words."""
    field, reason = _field_and_reason(errors[0])
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{field}: {reason}{more}", field


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the same shape."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        retry = getattr(exc, "retry_after", 1)  # compute.Busy says how long to wait
        headers = {"Retry-After": str(retry)} if exc.status in (429, 503) else None
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        detail, field = validation_detail(errors) if errors else ("body: invalid", "body")
        summary = [
            dict(zip(("field", "reason"), _field_and_reason(e), strict=True)) for e in errors[:20]
        ]
        return JSONResponse({"detail": detail, "field": field, "errors": summary}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail, field = str(exc.detail), None
        if exc.status_code == 404 and detail == "Not Found":  # no route: the path is at fault
            detail, field = f"path: nothing is served at {request.url.path} (see /docs)", "path"
        elif exc.status_code == 405:  # the route exists for other methods
            allowed = (getattr(exc, "headers", None) or {}).get("Allow", "")
            detail = f"method: {request.method} is not allowed on {request.url.path}" + (
                f" (allowed: {allowed})" if allowed else ""
            )
            field = "method"
        elif exc.status_code in (400, 413):  # raised while reading the body: it is at fault
            if detail == _UNPARSABLE:
                detail = "body: cannot be parsed (not UTF-8, or JSON nested too deeply)"
            elif not detail.startswith("body:"):  # e.g. Starlette's multipart errors
                detail = f"body: {detail}"
            field = "body"
        return JSONResponse(
            {"detail": detail, "field": field},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RecursionError)
    async def _too_deep(request: Request, exc: RecursionError) -> JSONResponse:
        # deeply nested JSON exhausts the parser's recursion; it is the client's input
        return JSONResponse(
            {"detail": "body: JSON nested too deeply", "field": "body"}, status_code=400
        )
