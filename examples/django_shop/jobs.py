"""The jobs, loaded by the worker with the app's settings:

    DJANGO_SETTINGS_MODULE=django_shop.settings resque-compat work --import django_shop.jobs --queues mail

Importing this module sets Django up, so jobs can use the ORM, mail and settings as views do.
"""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_shop.settings")
django.setup()

from django.conf import settings  # noqa: E402 - after django.setup()
from django.core.mail import send_mail  # noqa: E402

from resque_compat import job  # noqa: E402


@job("Shop::SendReceipt")
def send_receipt(order_id: int, email: str) -> None:
    """Ruby style (positional args): a Ruby app can enqueue it too, ``Resque.enqueue(SendReceipt, 7, "a@b")``."""
    send_mail(f"Your order {order_id}", "Thank you!", settings.DEFAULT_FROM_EMAIL, [email])
