from __future__ import annotations

from django.urls import path

from django_shop import views

urlpatterns = [
    path("orders", views.place_order),
    path("jobs/<str:job_id>", views.job_status),
]
