"""Enqueue from a view, and report a tracked job's status."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from django_shop.resque import get_resque


@csrf_exempt
@require_POST
def place_order(request: HttpRequest) -> HttpResponse:
    """Queue the receipt mail: the same bytes Ruby's ``Resque.enqueue`` writes, plus a status key."""
    try:
        body = json.loads(request.body or b"{}")
        order_id = int(body["order_id"])
        email = str(body["email"])
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": 'send {"order_id": int, "email": str}'}, status=400)
    job_id = get_resque().enqueue("mail", "Shop::SendReceipt", order_id, email, track=True)
    return JsonResponse({"job_id": job_id}, status=202)


@require_GET
def job_status(request: HttpRequest, job_id: str) -> HttpResponse:
    record = get_resque().status(job_id)
    if record is None:
        return JsonResponse({"error": "unknown job"}, status=404)
    return JsonResponse({"job_id": job_id, "status": record.status})
