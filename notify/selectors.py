"""Reads for the notification pages and the API."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from notify.models import Delivery, Endpoint, Preferences
from portal.access import roles_of


def endpoints_managed_by(user) -> QuerySet[Endpoint]:
    """Endpoints the user may manage: their own, their departments' and, for security, all."""
    roles = roles_of(user)
    queryset = Endpoint.objects.select_related("owner", "department")
    if roles.security:
        return queryset
    return queryset.filter(Q(owner=user) | Q(department_id__in=roles.editor_departments))


def delivery_log(endpoint: Endpoint, limit: int = 100) -> list[Delivery]:
    return list(endpoint.deliveries.select_related("event").order_by("-created_at", "-id")[:limit])


def customized(user) -> bool:
    return Preferences.objects.filter(user=user, customized=True).exists()
