"""The one error shape of the API: ``{"error": {"code": ..., "message": ..., "type": ..., "param": ...}}``
with a 4xx/5xx status (type and param as in OpenAI's errors)."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the client gets as JSON; ``details`` adds fields beside code and message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details or {}


class SafeJSONResponse(JSONResponse):
    """JSON that always renders: text that cannot be UTF-8 (a lone surrogate the client sent,
    echoed in a message) goes out as a ``\\uXXXX`` escape instead of failing with a 500."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None, **details: Any) -> JSONResponse:
    """The JSON error response; callers inside a request should prefer raising ApiError.

    ``type`` and ``param`` (the field at fault, or null) are OpenAI's: its clients read them."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    error = {"code": code, "message": message, "type": kind, "param": details.get("field"), **details}
    return SafeJSONResponse({"error": error}, status_code=status, headers=headers)


def _count(request: Request, code: str) -> None:
    state = getattr(request.app.state, "moksori", None)
    if state is not None:
        state.metrics.errors.labels(code).inc()


async def _api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    _count(request, error.code)
    return error_response(error.status, error.code, error.message, error.headers, **error.details)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = list(error.errors())
    if any(problem.get("type") == "json_invalid" for problem in problems):
        _count(request, "invalid_json")
        return error_response(400, "invalid_json", "the request body is not valid JSON")
    if any(problem.get("loc") == ("body",) and isinstance(problem.get("input"), bytes) for problem in problems):
        # FastAPI reads a body as JSON only when Content-Type says so; otherwise it hands over bytes.
        _count(request, "unsupported_media_type")
        sent = request.headers.get("content-type", "no Content-Type")
        return error_response(415, "unsupported_media_type", f"send the JSON body with 'Content-Type: application/json' "
                              f"(this request has {sent[:100]})")
    _count(request, "invalid_request")
    # The field as the client named it: ("body", "voice", "str") is a branch of voice's union type.
    fields = [str(problem["loc"][1]) for problem in problems if len(problem.get("loc", ())) > 1]
    named = {"field": fields[0]} if fields else {}
    return error_response(422, "invalid_request", "; ".join(_describe(problem) for problem in problems), **named)


def _describe(problem: dict[str, Any]) -> str:
    # loc is like ("body", "speed") or ("query", "text"); the first part only says where.
    location = [str(part) for part in problem.get("loc", ())[1:]] or [str(problem.get("loc", ("request",))[0])]
    message = problem.get("msg", "invalid")
    if "input" in problem and problem.get("type") != "missing":
        return f"{'.'.join(location)}: {message} (got {problem['input']!r})"[:300]
    return f"{'.'.join(location)}: {message}"


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}
    message = error.detail if isinstance(error.detail, str) else str(error.detail)
    if error.status_code == 400 and message == "There was an error parsing the body":  # FastAPI: not UTF-8, say
        _count(request, "invalid_json")
        return error_response(400, "invalid_json", "the request body is not valid JSON (it must be UTF-8 text)")
    if error.status_code == 404 and message == "Not Found":
        message = f"no such endpoint: {request.method} {request.url.path}"
    code = codes.get(error.status_code, "http_error")
    _count(request, code)
    return error_response(error.status_code, code, message, dict(error.headers or {}))


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    _count(request, "internal_error")
    return error_response(500, "internal_error", f"the server failed on this request ({type(error).__name__})")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
