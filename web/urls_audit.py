"""URL patterns of the auditor pages (web/views_audit.py), included in the `portal:` namespace."""

from django.urls import path

from web import views_audit

audit_patterns = [
    path("audit/", views_audit.audit_history_view, name="audit-history"),
    path("audit/events/<str:event_hash>/", views_audit.audit_event, name="audit-event"),
    path("audit/export/", views_audit.audit_export_view, name="audit-export"),
    path("audit/verify/", views_audit.audit_verify, name="audit-verify"),
    path("audit/checkpoint/", views_audit.audit_checkpoint, name="audit-checkpoint"),
    path("audit/builds/<uuid:build_uuid>/", views_audit.build_provenance, name="audit-provenance"),
    path("audit/gold/<slug:slug>/", views_audit.gold_history, name="gold-history"),
]
