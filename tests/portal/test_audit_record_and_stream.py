"""portal.audit_export.record_and_stream: the one way the export page and the API export."""

from django.http import QueryDict

from portal import audit_export, audit_history
from portal.models import AuditEvent


def test_it_records_once_before_streaming_and_bounds_the_export_at_that_head(dave, alice):
    form = audit_history.filter_form(QueryDict(""), audit_history.departments_for_filter())
    response = audit_export.record_and_stream(actor=dave, queryset=audit_history.events(dave, form),
                                              export_format="csv", filters={}, channel="api")
    event = AuditEvent.objects.filter(action="export.download").get()
    assert event.object_label == f"audit history export (csv, API) through event #{event.object_id}"
    assert event.changes["channel"] == [None, "api"]
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Disposition"].endswith('.csv"')
    body = b"".join(response.streaming_content).decode()
    assert "export.download" not in body  # its own event is past the bound


def test_the_page_channel_is_not_named(dave):
    form = audit_history.filter_form(QueryDict(""), audit_history.departments_for_filter())
    audit_export.record_and_stream(actor=dave, queryset=audit_history.events(dave, form), export_format="jsonl",
                                   filters={})
    event = AuditEvent.objects.get(action="export.download")
    assert "channel" not in event.changes
    assert event.object_label.startswith("audit history export (jsonl) through event #")
