"""The JSON API's OpenAPI 3.1 document, written out as data.

A test compares its paths and methods with the app's ``/api`` routes, so the document cannot
drift from what is served. Writes need ``Content-Type: application/json`` (any JSON object,
``{}`` when there is nothing to send) or an ``X-CSRF-Token`` header equal to the
``resque_web_csrf`` cookie: that is the API's CSRF protection.
"""

from __future__ import annotations

from typing import Any

from resque_compat.protocol.control import ControlCommand

OBJ: dict[str, Any] = {"type": "object", "additionalProperties": True}
ERROR = {
    "description": "error",
    "content": {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}},
}


def _param(name: str, where: str = "path", kind: str = "string", description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": where, "required": where == "path", "schema": {"type": kind}}
    if description:
        out["description"] = description
    return out


START = _param("start", "query", "integer", "offset of the first item shown (pages of 20)")
QUEUE = _param("queue", description="queue name")
LIST = _param("list", description="failure list name (`failed`, or `<queue>_failed` with RedisMultiQueue)")
INDEX = _param("index", kind="integer", description="position of the entry in its list (oldest is 0)")
NAME = _param("name", description="worker id (`host:pid:queues`), or a host name")
UUID = _param("uuid", description="resque-status job uuid")


def _get(summary: str, *params: dict[str, Any], tag: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "tags": [tag],
            "parameters": list(params),
            "responses": {
                "200": {"description": "the page's data", "content": {"application/json": {"schema": OBJ}}},
                "404": ERROR,
                "503": ERROR,
            },
        }
    }


def _post(
    summary: str,
    *params: dict[str, Any],
    tag: str,
    body: dict[str, Any] | None = None,
    required: list[str] | None = None,
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": body or {}}
    if required:
        schema["required"] = required
    return {
        "post": {
            "summary": summary,
            "tags": [tag],
            "parameters": list(params),
            "requestBody": {"required": False, "content": {"application/json": {"schema": schema}}},
            "responses": {
                "200": {
                    "description": "done; `message` says what happened",
                    "content": {"application/json": {"schema": OBJ}},
                },
                "400": ERROR,
                "403": ERROR,
                "404": ERROR,
                "409": ERROR,
                "503": ERROR,
            },
        }
    }


DIGEST = {"digest": {"type": "string", "description": "fingerprint from the listing; refuses if the entry changed"}}
STR = {"type": "string"}

PATHS: dict[str, dict[str, Any]] = {
    "/api/overview": _get("Queues, working workers, failure counts", tag="overview"),
    "/api/working": _get("Workers that hold a job, oldest job first, 50 a page", START, tag="working"),
    "/api/working/{name}": _get("One worker and its current job", NAME, tag="working"),
    "/api/queues": _get("Every queue with its size, and the failure lists", tag="queues"),
    "/api/queues/{queue}": _get("A page of a queue's pending jobs (LRANGE)", QUEUE, START, tag="queues"),
    "/api/queues/{queue}/remove": _post("Remove a queue and its jobs", QUEUE, tag="queues"),
    "/api/workers": _get("Workers (50 a page), or a host list when there are several hosts", START, tag="workers"),
    "/api/workers/{name}": _get(
        "One worker (an id) or the workers of one host (`all` for every host), 50 a page", NAME, START, tag="workers"
    ),
    "/api/workers/pause_all": _post(
        "Set `pause-all-workers`: Ruby and resque-compat workers stop reserving", tag="workers"
    ),
    "/api/workers/resume_all": _post("Clear `pause-all-workers`", tag="workers"),
    "/api/workers/{name}/control": _post(
        "Send pause, resume, stop or kill-job to one resque-compat worker (any host)",
        NAME,
        tag="workers",
        body={"command": {"type": "string", "enum": ControlCommand.words()}},
        required=["command"],
    ),
    "/api/failed": _get(
        "A page of failures, newest first",
        START,
        _param("class", "query", description="only failures of this job class (a bounded scan)"),
        _param("order", "query", description="`desc` (default, newest first) or `asc`"),
        tag="failed",
    ),
    "/api/failed/{list}": _get("A page of one failure list", LIST, START, tag="failed"),
    "/api/failed/requeue/all": _post(
        "Retry every failure: batched, in the background for long lists (`task` gives its progress)", tag="failed"
    ),
    "/api/failed/{list}/requeue/all": _post("Retry every failure of one list", LIST, tag="failed"),
    "/api/failed/clear": _post("Delete every failure", tag="failed"),
    "/api/failed/{list}/clear": _post("Delete one failure list", LIST, tag="failed"),
    "/api/failed/clear_retried": _post("Remove the failures that were retried", tag="failed"),
    "/api/failed/{list}/clear_retried": _post("Remove the retried failures of one list", LIST, tag="failed"),
    "/api/failed/requeue/{index}": _post("Retry one failure", INDEX, tag="failed", body=DIGEST),
    "/api/failed/{list}/requeue/{index}": _post("Retry one failure of a list", LIST, INDEX, tag="failed", body=DIGEST),
    "/api/failed/remove/{index}": _post("Remove one failure", INDEX, tag="failed", body=DIGEST),
    "/api/failed/{list}/remove/{index}": _post("Remove one failure of a list", LIST, INDEX, tag="failed", body=DIGEST),
    "/api/tasks/{id}": _get(
        "Progress of a background Retry all / Clear retried", _param("id", description="`task.id`"), tag="failed"
    ),
    "/api/raw/{key}": {
        "get": {
            "summary": "A record's whole stored bytes (pages and lists cut long values)",
            "tags": ["stats"],
            "parameters": [
                _param("key", description="key name without the namespace"),
                _param("index", "query", "integer", "list entry position"),
                _param("field", "query", description="hash field"),
            ],
            "responses": {
                "200": {"description": "the bytes", "content": {"text/plain": {"schema": STR}}},
                "400": {"description": "no index/field for a list/hash"},
                "404": {"description": "no such key or entry"},
            },
        }
    },
    "/api/stats/resque": _get("Resque.info", tag="stats"),
    "/api/stats/redis": _get("Redis INFO", tag="stats"),
    "/api/stats/keys": _get(
        "Keys under the namespace with type and size, one SCAN page",
        _param("cursor", "query", "integer", "SCAN cursor from `next_cursor`"),
        tag="stats",
    ),
    "/api/stats/keys/{key}": _get(
        "One key's contents, a page at a time",
        _param("key", description="key name without the namespace"),
        START,
        tag="stats",
    ),
    "/api/stats.txt": {
        "get": {
            "summary": "resque-web's stats.txt, line for line",
            "tags": ["stats"],
            "responses": {"200": {"description": "plain text", "content": {"text/plain": {"schema": STR}}}},
        }
    },
    "/api/status": _get(
        "php-resque job status by id",
        _param("id", "query", description="the job id enqueue returned"),
        _param("prefix", "query", description="resque/php-resque's status prefix, if any"),
        tag="jobs",
    ),
    "/api/enqueue": _post(
        "Enqueue a job (Ruby's bytes; php-resque's tracked form with `track`)",
        tag="jobs",
        body={
            "queue": STR,
            "class": STR,
            "args": {"type": "array", "items": {}},
            "track": {"type": "boolean"},
        },
        required=["queue", "class"],
    ),
    "/api/schedule": _get("Recurring schedules from persistent_schedules", tag="scheduler"),
    "/api/schedule/requeue": _post(
        "Enqueue a schedule's job now", tag="scheduler", body={"name": STR}, required=["name"]
    ),
    "/api/schedule/delete": _post("Delete a dynamic schedule", tag="scheduler", body={"name": STR}, required=["name"]),
    "/api/delayed": _get("Delayed timestamps with item counts, soonest first", START, tag="scheduler"),
    "/api/delayed/{timestamp}": _get(
        "The items at one timestamp", _param("timestamp", kind="integer"), START, tag="scheduler"
    ),
    "/api/delayed/jobs/{klass}": _get(
        "Where one job (class + args) is scheduled",
        _param("klass"),
        _param("args", "query", description="JSON array"),
        _param("queue", "query"),
        tag="scheduler",
    ),
    "/api/delayed/search": _get(
        "Jobs whose class contains a term: working, delayed and queued",
        _param("q", "query"),
        tag="scheduler",
    ),
    "/api/delayed/queue_now": _post(
        "Move the items of a timestamp (or one item, by digest) onto their queues now",
        tag="scheduler",
        body={"timestamp": {"type": "integer"}, **DIGEST},
        required=["timestamp"],
    ),
    "/api/delayed/cancel_now": _post(
        "Remove a delayed job (class + args) at a timestamp",
        tag="scheduler",
        body={"klass": STR, "timestamp": {"type": "integer"}, "args": {"type": "array", "items": {}}, "queue": STR},
        required=["klass", "timestamp"],
    ),
    "/api/delayed/clear": _post("Delete every delayed job", tag="scheduler"),
    "/api/retrying": _get("Pending retries: attempt, queue, next run time, last error", tag="retries"),
    "/api/retrying/now": _post(
        "Run a delayed retry now (move it to its queue)", tag="retries", body={"name": STR}, required=["name"]
    ),
    "/api/retrying/give_up": _post(
        "Stop retrying: drop the retry, reset its attempt counter, record its last failure",
        tag="retries",
        body={"name": STR},
        required=["name"],
    ),
    "/api/statuses": _get(
        "resque-status records listed in _statuses, newest first (pages of 50)", START, tag="statuses"
    ),
    "/api/statuses/{uuid}": _get("One resque-status record with pct_complete", UUID, tag="statuses"),
    "/api/statuses/{uuid}/kill": _post("Ask a resque-status job to stop (SADD _kill)", UUID, tag="statuses"),
    "/api/statuses/clear": _post(
        "Remove listed resque-status records: all, or the completed / failed / killed ones",
        tag="statuses",
        body={"which": {"type": "string", "enum": ["all", "completed", "failed", "killed"]}},
    ),
    "/api/history": _get(
        "The graphs' history: jobs per minute, queued, each queue's depth, failures per class (gaps are null)",
        _param("range", "query", description="`hour` (per minute, default), `day` (per 10 min) or `week` (per hour)"),
        _param("queue", "query", description="only this queue's depth"),
        tag="overview",
    ),
    "/api/openapi.json": {
        "get": {
            "summary": "This document",
            "tags": ["meta"],
            "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": OBJ}}}},
        }
    },
}


def openapi_document(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "resque-compat web API",
            "version": version,
            "description": (
                "Everything the dashboard shows and does, as JSON. Writes are POSTs with a JSON body "
                "(Content-Type: application/json) or an X-CSRF-Token header matching the resque_web_csrf cookie. "
                "With authentication configured, use HTTP basic auth."
            ),
        },
        "components": {"securitySchemes": {"basic": {"type": "http", "scheme": "basic"}}},
        "security": [{"basic": []}, {}],
        "paths": PATHS,
    }
