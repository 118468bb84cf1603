"""The framework recipes in examples/ run: each enqueues through its web layer, the job runs from
the registry its jobs module fills, and the status endpoint reports it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from resque_compat import JobStatus, Resque
from resque_compat.protocol import JobPayload, StatusRecord
from resque_compat.registry import default_registry

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(autouse=True)
def examples_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))


def perform_next(resque: Resque, queue: str) -> Any:
    """Take the next job and perform it the way the worker calls each job style."""
    raw = resque.redis.lpop(resque.keys.queue(queue))
    assert isinstance(raw, bytes)
    payload = JobPayload.decode(raw)
    definition = default_registry.lookup(payload.class_)
    if definition.style == "php":
        instance = definition.target()
        instance.args, instance.queue, instance.job_id = payload.args[0], queue, payload.job_id
        result = instance.perform()
    else:
        result = definition.target(*payload.args)
    if payload.job_id:
        key = resque.keys.status(payload.job_id)
        current = StatusRecord.decode(resque.redis.get(key) or b"")
        resque.redis.set(key, current.advanced(JobStatus.COMPLETE, result=result).encode())
    return result


def test_flask_enqueue_and_status(redis_url: str, r: redis.Redis) -> None:
    import flask_shop.jobs  # noqa: F401, PLC0415 - registers the job, as --import does
    from flask_shop.app import create_app  # noqa: PLC0415 - examples/ is on the path only here

    client = create_app(redis_url).test_client()
    assert client.post("/reports", json={}).status_code == 400
    reply = client.post("/reports", json={"month": "2026-11"})
    assert reply.status_code == 202
    job_id = reply.get_json()["job_id"]
    item = bytes(r.lindex("resque:queue:reports", 0) or b"")  # type: ignore[arg-type]
    assert item.startswith(b'{"class":"App\\\\Jobs\\\\BuildReport","args":[{"month":"2026-11"}],"id":"')
    assert client.get(f"/jobs/{job_id}").get_json()["status"] == 1
    perform_next(Resque(redis_url), "reports")
    assert client.get(f"/jobs/{job_id}").get_json() == {
        "job_id": job_id,
        "status": 4,
        "result": {"month": "2026-11", "rows": 0},
    }
    assert client.get("/jobs/nope").status_code == 404


def test_fastapi_async_enqueue_and_status(redis_url: str, r: redis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    import fastapi_shop.jobs  # noqa: F401, PLC0415
    from fastapi.testclient import TestClient  # noqa: PLC0415
    from fastapi_shop.app import create_app  # noqa: PLC0415

    with TestClient(create_app(redis_url)) as client:
        assert client.post("/thumbnails", json={"image_id": "x"}).status_code == 422
        reply = client.post("/thumbnails", json={"image_id": 7})
        assert reply.status_code == 202
        job_id = reply.json()["job_id"]
        assert client.get("/queues").json() == {"thumbnails": 1}
        assert client.get(f"/jobs/{job_id}").json() == {"job_id": job_id, "status": 1}
        perform_next(Resque(redis_url), "thumbnails")
        assert client.get(f"/jobs/{job_id}").json()["status"] == 4
        assert client.get("/jobs/nope").status_code == 404
    assert "thumbnail 7 at 256px" in capsys.readouterr().out


@pytest.fixture
def django_env(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "django_shop.settings")
    monkeypatch.setenv("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
    monkeypatch.setenv("REDIS_URL", redis_url)
    import django_shop.jobs  # noqa: F401, PLC0415 - the worker's --import: sets Django up
    from django.test import override_settings  # noqa: PLC0415

    with override_settings(RESQUE_REDIS_URL=redis_url):
        yield


def test_django_view_enqueues_and_worker_uses_settings(django_env: None, redis_url: str, r: redis.Redis) -> None:
    from django.core import mail  # noqa: PLC0415
    from django.test import Client  # noqa: PLC0415

    client = Client()
    assert client.post("/orders", b"{}", content_type="application/json").status_code == 400
    reply = client.post("/orders", {"order_id": 42, "email": "a@example.com"}, content_type="application/json")
    assert reply.status_code == 202
    job_id = reply.json()["job_id"]
    item = JobPayload.decode(r.lindex("resque:queue:mail", 0) or b"")
    assert (item.class_, item.args, item.job_id) == ("Shop::SendReceipt", [42, "a@example.com"], job_id)
    assert client.get(f"/jobs/{job_id}").json() == {"job_id": job_id, "status": 1}
    perform_next(Resque(redis_url), "mail")
    assert client.get(f"/jobs/{job_id}").json()["status"] == 4
    sent = mail.outbox[-1]  # type: ignore[attr-defined]
    assert (sent.subject, sent.from_email, sent.to) == ("Your order 42", "shop@example.com", ["a@example.com"])
    assert os.environ["DJANGO_SETTINGS_MODULE"] == "django_shop.settings"
    assert "django_shop.jobs" in sys.modules
