"""Logging for the long-running commands (``work``, ``scheduler``): text or JSON lines.

One setup for both, so a log shipper sees one shape. Text lines are the classic
``time LEVEL resque-compat[pid]: message``; JSON lines carry ``ts``, ``level``, ``msg``,
``logger``, ``pid`` and, for job lines, the job's ``job_id``, ``class``, ``queue``, ``worker``,
``duration_ms`` and ``outcome`` (text lines show those as a bracketed suffix).

Verbosity follows the peers: Ruby's and php-resque's ``VERBOSE`` is INFO, ``VVERBOSE`` DEBUG
(the worker's config resolves them). Other libraries log only from WARNING up.

No secrets: every line passes through :func:`scrub`, which hides the password of any URL in
it (the same rule as :func:`resque_compat.connection.redact`); job arguments are logged only at
DEBUG and then through :func:`mask_args`, which hides values under keys named like a secret.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Mapping
from typing import Any, Literal, TextIO

import msgspec

from resque_compat.connection import redact

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
#: the attribute a job line's fields travel in (``log.info(..., extra={JOB_FIELDS: {...}})``)
JOB_FIELDS = "resque_job"
MASK = "***"

WORKER_TEXT = "%(asctime)s %(levelname)s resque-compat[%(process)d]: %(message)s"
SCHEDULER_TEXT = "%(asctime)s resque-compat scheduler[%(process)d]: %(message)s"

#: key names whose values never reach a log line (password, passwd, secret, token, api_key, auth, ...)
_SECRET_KEY = re.compile(r"pass(word|wd)?|secret|token|api[-_]?key|auth|credential|private[-_]?key", re.IGNORECASE)
_MAX_DEPTH = 32


def level_for(verbose: int) -> int:
    """0: WARNING, 1 (``-v``, VERBOSE): INFO, 2 (``-vv``, VVERBOSE): DEBUG."""
    return logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING


def scrub(text: str) -> str:
    """Hide URL passwords anywhere in a line (an error message may quote the address)."""
    return redact(text) if "@" in text else text


def mask_args(value: Any, _depth: int = 0) -> Any:
    """A copy of job arguments with the values of secret-looking keys replaced by ``***``.

    Positional secrets (``["user", "hunter2"]``) cannot be recognised: that is why arguments
    are logged at DEBUG only."""
    if _depth > _MAX_DEPTH:
        return MASK
    if isinstance(value, Mapping):
        return {
            k: MASK if isinstance(k, str) and _SECRET_KEY.search(k) else mask_args(v, _depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [mask_args(v, _depth + 1) for v in value]
    return value


def job_fields(
    *,
    job_id: str | None,
    class_name: str,
    queue: str,
    worker: str,
    duration: float,
    outcome: str,
) -> dict[str, Any]:
    """The ``extra`` of a job line: ``log.info(msg, extra=job_fields(...))``."""
    return {
        JOB_FIELDS: {
            "job_id": job_id,
            "class": class_name,
            "queue": queue,
            "worker": worker,
            "duration_ms": round(duration * 1000.0, 3),
            "outcome": outcome,
        }
    }


#: C0/C1 controls, the Unicode line separators, and lone surrogates (not encodable as UTF-8)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_CONTROL_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def escape_controls(text: str) -> str:
    """Control characters (newline, CR, ESC, NUL, U+2028 ...) as visible escapes: a class name
    or an error message from Redis can never start a forged log line or drive a terminal."""
    return _CONTROL.sub(_escape, text)


class TextFormatter(logging.Formatter):
    """The classic line, a job line's fields appended as ``[id=… worker=… 12.3 ms]``.

    The message and the fields are escaped (:func:`escape_controls`): one record is one line,
    plus a traceback below it whose lines are escaped except for their own newlines."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        return _CONTROL_BUT_NEWLINE.sub(_escape, super().formatException(ei))

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, JOB_FIELDS, None)
        if isinstance(fields, dict):
            first, _, rest = line.partition("\n")  # a traceback stays below the fields
            suffix = escape_controls(
                f" [id={fields.get('job_id') or '-'} worker={fields.get('worker')} {fields.get('duration_ms')} ms]"
            )
            line = first + suffix + ("\n" + rest if rest else "")
        return scrub(line)


_encode = msgspec.json.Encoder(enc_hook=repr).encode


class JsonFormatter(logging.Formatter):
    """One JSON object per line; a traceback goes in ``exc`` (never splits the line)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname,
            "msg": scrub(record.getMessage()),
            "logger": record.name,
            "pid": record.process,
        }
        fields = getattr(record, JOB_FIELDS, None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exc"] = scrub(self.formatException(record.exc_info))
        elif record.exc_text:
            out["exc"] = scrub(record.exc_text)
        try:
            return _encode(out).decode()
        except UnicodeEncodeError:  # a lone surrogate from undecodable bytes: still one valid line
            return _encode(_replace_surrogates(out)).decode()


def _replace_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_replace_surrogates(v) for v in value]
    return value


def _iso(created: float) -> str:
    """RFC 3339 UTC with milliseconds: ``2026-11-26T20:20:39.123Z``."""
    whole = int(created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((created - whole) * 1000):03d}Z"


def setup(
    log_format: str = "text",
    level: int = logging.WARNING,
    *,
    text_format: str = WORKER_TEXT,
    stream: TextIO | None = None,
) -> None:
    """Route every log record to ``stream`` (stderr) in ``log_format``; resque_compat's own
    loggers at ``level``, everything else from WARNING up. Replaces earlier handlers, so it
    can be called again (a test, a re-exec)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r} (choose {', '.join(LOG_FORMATS)})")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter(text_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("resque_compat").setLevel(level)


__all__ = [
    "JOB_FIELDS",
    "LOG_FORMATS",
    "SCHEDULER_TEXT",
    "WORKER_TEXT",
    "JsonFormatter",
    "LogFormat",
    "TextFormatter",
    "escape_controls",
    "job_fields",
    "level_for",
    "mask_args",
    "scrub",
    "setup",
]
