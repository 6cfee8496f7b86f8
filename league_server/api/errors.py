"""Exception handlers: every error is JSON `{"detail": ..., "field": ...}` with the right 4xx status; request
validation lists each bad field. Unexpected exceptions are logged and become a plain 500 (never a traceback
to the client)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from league_server.errors import AuthError, ConflictError, LeagueError, NotFoundError, RuleError
from league_server.schemas import ErrorResponse, ValidationErrorResponse

log = logging.getLogger(__name__)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc) or "(request)"


async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"field": _field(err.get("loc", ())), "message": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    body = ValidationErrorResponse(detail=f"invalid request: {summary}", errors=errors)  # type: ignore[arg-type]
    return JSONResponse(body.model_dump(), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _league_error(_request: Request, exc: LeagueError) -> JSONResponse:
    field = None
    if isinstance(exc, NotFoundError):
        code = status.HTTP_404_NOT_FOUND
    elif isinstance(exc, ConflictError):
        code = status.HTTP_409_CONFLICT
    elif isinstance(exc, RuleError):
        code, field = status.HTTP_422_UNPROCESSABLE_CONTENT, exc.field
    elif isinstance(exc, AuthError):
        code = status.HTTP_403_FORBIDDEN
    else:
        code = status.HTTP_400_BAD_REQUEST
    return JSONResponse(ErrorResponse(detail=str(exc), field=field).model_dump(), status_code=code)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(LeagueError, _league_error)  # type: ignore[arg-type]


# Documented on every route (FastAPI adds 422 itself; we replace its schema with ours).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "no such league / race / car / lap"},
    422: {"model": ValidationErrorResponse, "description": "invalid input; `errors` names each field"},
}
ADMIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    401: {"model": ErrorResponse, "description": "no bearer token"},
    403: {"model": ErrorResponse, "description": "wrong bearer token, or no admin token configured"},
    409: {"model": ErrorResponse, "description": "conflicts with what is stored (duplicate slug, car id)"},
}
PUBLIC_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    429: {"model": ErrorResponse, "description": "rate limit exceeded; see Retry-After"},
}
