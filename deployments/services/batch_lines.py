"""A batch's input file, line by line: the file's shape is checked whole (a bad line fails the batch,
as on OpenAI), each request body against its endpoint's type (a bad body is that line's error)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from deployments.errors import validation_error
from providers.api.batches import MAX_FILE_ERRORS, MAX_LINE_BYTES, MAX_LINES
from providers.api.errors import APIError, InvalidRequestError
from providers.api.inference import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from providers.api.responses import CreateResponseRequest

REQUEST_TYPES: dict[str, type[BaseModel]] = {
    "/v1/chat/completions": ChatCompletionRequest, "/v1/completions": CompletionRequest,
    "/v1/embeddings": EmbeddingRequest, "/v1/responses": CreateResponseRequest,
}
MODEL_TYPES = {"/v1/chat/completions": "llm", "/v1/completions": "llm", "/v1/embeddings": "embedding",
               "/v1/responses": "llm"}


@dataclass(frozen=True)
class Line:
    """One request of the file; `number` counts from 1, as editors do."""

    number: int
    custom_id: str
    body: dict[str, Any]


@dataclass(frozen=True)
class FileErrors:
    """Why the file as a whole cannot run: OpenAI's `errors` of a failed batch."""

    data: list[dict[str, Any]]
    count: int

    def errors(self) -> dict[str, Any]:
        return {"object": "list", "data": self.data}


def parse_lines(data: bytes, endpoint: str) -> list[Line] | FileErrors:
    """The file's requests, or every line that breaks the file's shape (the first `MAX_FILE_ERRORS` listed)."""
    lines: list[Line] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    count = 0

    def fail(number: int | None, code: str, message: str, param: str | None = None) -> None:
        nonlocal count
        count += 1
        if len(errors) < MAX_FILE_ERRORS:
            errors.append({"code": code, "message": message, "param": param, "line": number})

    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        if len(lines) + count >= MAX_LINES:
            fail(number, "too_many_requests", f"a batch holds at most {MAX_LINES} requests")
            break
        if len(raw) > MAX_LINE_BYTES:
            fail(number, "line_too_large", f"line {number} is larger than {MAX_LINE_BYTES} bytes")
            continue
        try:
            request = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            fail(number, "invalid_json_line", f"line {number} is not valid JSON: {exc}")
            continue
        problem = _shape_problem(request, endpoint, seen)
        if problem:
            fail(number, *problem)
            continue
        seen.add(request["custom_id"])
        lines.append(Line(number, request["custom_id"], request["body"]))
    if not lines and not count:
        fail(None, "empty_file", "the input file holds no request")
    return FileErrors(errors, count) if count else lines


@dataclass(frozen=True)
class CheckedFile:
    """A usable file: its request count, the models it names, and each line not yet answered with
    its validated request or the 400 it gets."""

    total: int
    model_ids: list[str]
    pending: list[tuple[Line, BaseModel | APIError]]


def checked_file(data: bytes, endpoint: str, answered: set[int]) -> CheckedFile | FileErrors:
    """Parse the file and validate the bodies of the lines not in `answered` (CPU work: a thread runs it)."""
    lines = parse_lines(data, endpoint)
    if isinstance(lines, FileErrors):
        return lines
    pending: list[tuple[Line, BaseModel | APIError]] = []
    for line in lines:
        if line.number not in answered:
            try:
                pending.append((line, validated_body(line, endpoint)))
            except APIError as exc:
                pending.append((line, exc))
    model_ids = sorted({line.body["model"] for line in lines if isinstance(line.body.get("model"), str)})
    return CheckedFile(len(lines), model_ids, pending)


def request_rows(pending: list[tuple[Line, BaseModel | APIError]], models: dict[str, Any],
                 prioritized: set[str], priority: int) -> list[dict[str, Any]]:
    """A row per line: to answer ({line, custom_id, body}), or answered already with its error.
    `models` maps each model id to its model or the error naming it; requests to a `prioritized`
    model that set no priority get `priority`."""
    rows: list[dict[str, Any]] = []
    for line, request in pending:
        problem = request if isinstance(request, APIError) else models[request.model]
        if isinstance(problem, APIError):
            rows.append(error_result(line, problem))
            continue
        if request.model in prioritized and getattr(request, "priority", 0) is None:
            request.priority = priority
        rows.append({"line": line.number, "custom_id": line.custom_id,
                     "body": request.model_dump_json(exclude_unset=True, by_alias=True)})
    return rows


def _shape_problem(request: Any, endpoint: str, seen: set[str]) -> tuple[str, str, str | None] | None:
    if not isinstance(request, dict):
        return "invalid_request", "a line must be a JSON object with custom_id, method, url and body", None
    custom_id = request.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > 512:
        return "missing_required_parameter", "custom_id must be a string of 1 to 512 characters", "custom_id"
    if custom_id in seen:
        return "duplicate_custom_id", f"custom_id '{custom_id}' is used by an earlier line", "custom_id"
    if request.get("method") != "POST":
        return "invalid_method", "method must be 'POST'", "method"
    if request.get("url") != endpoint:
        return "mismatched_endpoint", f"url must be the batch's endpoint '{endpoint}'", "url"
    if not isinstance(request.get("body"), dict):
        return "missing_required_parameter", "body must be a JSON object (the request)", "body"
    return None


def validated_body(line: Line, endpoint: str) -> BaseModel:
    """The line's request, or the 400 the endpoint would answer it with."""
    try:
        request = REQUEST_TYPES[endpoint].model_validate(line.body)
    except ValidationError as exc:
        raise validation_error(exc) from None
    if getattr(request, "stream", None):
        raise InvalidRequestError("stream: a batch request cannot stream", param="stream")
    if getattr(request, "background", None):
        raise InvalidRequestError("background: a batch request runs in the batch already", param="background")
    return request


def error_result(line: Line, error: APIError) -> dict[str, Any]:
    """The result row of a line answered with an error."""
    return {"line": line.number, "custom_id": line.custom_id, "status_code": error.status_code,
            "body": json.dumps(error.body())}
