"""The JSON API fuzzed from its own OpenAPI document with schemathesis, against a real Redis
seeded with every peer's records (and broken ones): no request it can build gets a 5xx.

Sized for CI (``SCHEMATHESIS_EXAMPLES`` per operation, default 15). Host header: schemathesis'
ASGI client says ``testserver``, admitted here as an operator would with ``--allowed-host``.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from skip_policy import package_reason

from resque_compat import Resque
from resque_compat.testing.redis_server import RedisServer
from resque_compat.web import create_app

schemathesis = pytest.importorskip(
    "schemathesis", reason=package_reason("schemathesis", "not installed (the dev extra)")
)
import web_seed  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "15"))


@pytest.fixture(scope="module")
def seeded_app() -> Any:
    with RedisServer() as server:
        web_seed.seed(redis.Redis.from_url(server.url))
        yield create_app(Resque(server.url, namespace="resque"), allowed_hosts=["testserver"])


def test_no_request_built_from_the_openapi_document_gets_a_server_error(seeded_app: Any) -> None:
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", seeded_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    failures = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
        )
        def call(case: Any) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        try:
            call()
        except (Exception, BaseExceptionGroup) as exc:  # every operation's failures, reported together
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:800]}")
    assert not failures, "\n\n".join(failures)
