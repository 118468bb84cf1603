"""Flask: one Resque client per app, in ``app.extensions``.

REDIS_URL=redis://localhost:6379/0 flask --app flask_shop.app run
resque-compat work --import flask_shop.jobs --queues reports
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, current_app, jsonify, request

from resque_compat import Resque


def create_app(redis_url: str | None = None, namespace: str | None = None) -> Flask:
    app = Flask(__name__)
    app.extensions["resque"] = Resque(redis_url or os.environ.get("REDIS_URL"), namespace=namespace)

    @app.post("/reports")
    def build_report() -> Any:
        body = request.get_json(silent=True) or {}
        if not isinstance(body.get("month"), str):
            return jsonify(error='send {"month": "2026-11"}'), 400
        # PHP style: one dict argument, tracked, so a php-resque worker could run it as well
        job_id = resque().enqueue("reports", "App\\Jobs\\BuildReport", {"month": body["month"]}, track=True)
        return jsonify(job_id=job_id), 202

    @app.get("/jobs/<job_id>")
    def job_status(job_id: str) -> Any:
        record = resque().status(job_id)
        if record is None:
            return jsonify(error="unknown job"), 404
        return jsonify(job_id=job_id, status=record.status, result=record.to_dict().get("result"))

    return app


def resque() -> Resque:
    client: Resque = current_app.extensions["resque"]
    return client
