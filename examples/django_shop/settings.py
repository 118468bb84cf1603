"""Minimal settings: what matters here is ``RESQUE_REDIS_URL`` / ``RESQUE_NAMESPACE``, read by
both the web process and the worker (which imports ``django_shop.jobs``)."""

from __future__ import annotations

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "django_shop.urls"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = "shop@example.com"

#: the Redis the PHP/Ruby side uses too; same URL forms as ``resque-compat --redis``
RESQUE_REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
RESQUE_NAMESPACE = os.environ.get("RESQUE_NAMESPACE", "resque")
