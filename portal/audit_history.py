"""Reading the audit trail for people: filters, label search, keyset pages and readable diffs.

Everything here reads; nothing is recorded. Pages are keyset-paginated on the event id
(the chain order), so a page costs the same at event 100 and at event 10,000,000, and each
filter has an index ending in id (see AuditEvent.Meta). A time range becomes an id range,
which is exact because `at` never goes backwards along the chain (portal/audit.py).
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import json
import operator
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from django import forms
from django.db import connection
from django.db.models import BooleanField, Expression, Q, QuerySet
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString

from portal import access
from portal.models import AuditEvent, Department
from portal.redact import redact

PAGE_SIZE = 50
# The actions Goldsmith writes (the contract in docs/audit.md); offered as suggestions only.
KNOWN_ACTIONS = (
    "gold_image.create", "gold_version.create", "gold_version.update", "gold_version.publish",
    "gold_version.deprecate", "gold_version.revoke", "gold_version.import", "layer.create", "layer_version.create",
    "layer_version.update", "layer_version.publish", "build.request", "build.cancel", "build.state_change",
    "policy.update", "rollout.create", "rollout.start", "rollout.pause", "rollout.resume", "rollout.cancel",
    "rollout.wave_done", "rollout.finish", "schedule.create", "schedule.update", "schedule.delete",
    "auth.login", "auth.login_failed", "auth.logout", "access.denied", "token.create",
    "token.revoke", "export.download", "audit.checkpoint", "audit.prune",
)
FILTER_FIELDS = ("actor", "department", "action", "object_type", "object_id", "outcome", "since", "until", "q")
_WORD = re.compile(r"[^\W_]+")  # letters and digits, as the index splits labels


class HistoryFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=150, label="Actor",
                            help_text="User name, or worker:HOST, system, anonymous")
    department = forms.ChoiceField(required=False, label="Department")
    action = forms.CharField(required=False, max_length=64, label="Action",
                             help_text="e.g. gold_version.publish; end with . or * for a family (build.)")
    object_type = forms.CharField(required=False, max_length=64, label="Object type",
                                  help_text="e.g. build, goldimageversion, layerversion")
    object_id = forms.CharField(required=False, max_length=64, label="Object id")
    outcome = forms.ChoiceField(required=False, label="Outcome",
                                choices=[("", "Any"), *AuditEvent.Outcome.choices])
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To (inclusive)", widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(required=False, max_length=200, label="Search labels",
                        widget=forms.TextInput(attrs={"type": "search"}))

    def __init__(self, *args, departments: list[Department], **kwargs):
        super().__init__(*args, **kwargs)
        for name, form_field in self.fields.items():
            if form_field.help_text:
                form_field.widget.attrs["aria-describedby"] = f"id_{name}-help"
        self.departments = {department.slug: department for department in departments}
        self.fields["department"].choices = [("", "Any"), *((d.slug, d.name) for d in departments)]
        self.fields["action"].widget.attrs["list"] = "known-actions"

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["until"] < data["since"]:
            self.add_error("until", "The end date is before the start date.")
        return data


def departments_for_filter() -> list[Department]:
    return list(Department.objects.order_by("name"))


def filter_form(params, departments: list[Department]) -> HistoryFilterForm:
    """A bound form when any filter is present, else an unbound one (which filters nothing)."""
    present = any(params.get(name) for name in FILTER_FIELDS)
    return HistoryFilterForm(params if present else None, departments=departments)


def active_filters(form: HistoryFilterForm) -> dict[str, str]:
    """The valid, non-empty filters as strings (for links, exports and the export's audit event)."""
    if not form.is_bound or not form.is_valid():
        return {}
    return {name: str(value) for name, value in form.cleaned_data.items() if value not in (None, "")}


def events(user, form: HistoryFilterForm) -> QuerySet[AuditEvent]:
    """The events `user` may read that match the form's filters (what an export streams)."""
    return apply_filters(access.audit_events(user), form)


def history_list(user, form: HistoryFilterForm) -> QuerySet[AuditEvent]:
    """events() with each event's department: the history page and GET /api/v1/audit/events/."""
    return events(user, form).select_related("department")


def apply_filters(queryset: QuerySet[AuditEvent], form: HistoryFilterForm) -> QuerySet[AuditEvent]:
    """The events matching the form's filters (all of them for an unbound or invalid form)."""
    if not form.is_bound or not form.is_valid():
        return queryset
    data = form.cleaned_data
    if data["actor"]:
        queryset = queryset.filter(actor_name=data["actor"].strip())
    if data["department"]:
        department = form.departments.get(data["department"])
        queryset = queryset.filter(department_id=department.pk if department else -1)
    action = data["action"].strip()
    if action.endswith(("*", ".")):
        queryset = queryset.filter(action__startswith=action.rstrip("*"))
    elif action:
        queryset = queryset.filter(action=action)
    if data["object_type"]:
        queryset = queryset.filter(object_type=data["object_type"].strip().lower())
    if data["object_id"]:
        queryset = queryset.filter(object_id=data["object_id"].strip())
    if data["outcome"]:
        queryset = queryset.filter(outcome=data["outcome"])
    queryset = _time_range(queryset, data["since"], data["until"])
    if data["q"].strip():
        queryset = search_labels(queryset, data["q"])
    return queryset


def _time_range(queryset: QuerySet[AuditEvent], since: dt.date | None, until: dt.date | None) -> QuerySet[AuditEvent]:
    """Dates in the viewer's zone become an id range: one indexed look-up per end."""
    zone = timezone.get_current_timezone()
    if since:
        start = dt.datetime.combine(since, dt.time.min, zone)
        first = AuditEvent.objects.filter(at__gte=start).order_by("at", "id").values_list("id", flat=True).first()
        queryset = queryset.filter(id__gte=first) if first else queryset.none()
    if until:
        end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time.min, zone)
        last = AuditEvent.objects.filter(at__lt=end).order_by("-at", "-id").values_list("id", flat=True).first()
        queryset = queryset.filter(id__lte=last) if last else queryset.none()
    return queryset


class LabelMatches(Expression):
    """PostgreSQL full-text match of object_label (served by the audit_label_search GIN index).

    The label is split into runs of letters and digits ("web/nginx@1.2.0" is web, nginx, 1,
    2, 0); every word of the query must start one of them, so "ngi 1.2" finds it. Words are
    letters and digits only, so the tsquery syntax can never be injected.
    """

    conditional = True
    output_field = BooleanField()

    def __init__(self, words: list[str]):
        super().__init__()
        self.words = words

    def as_sql(self, compiler, connection):
        query = " & ".join(f"{word}:*" for word in self.words)
        table = compiler.quote_name_unless_alias(AuditEvent._meta.db_table)
        # Exactly the expression of the audit_label_search index (migration 0004), or it is not used.
        vector = f"to_tsvector('simple'::regconfig, regexp_replace({table}.\"object_label\", '[^[:alnum:]]+', ' ', 'g'))"
        return f"{vector} @@ to_tsquery('simple'::regconfig, %s)", [query]


def search_words(text: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(text)][:10]


def search_labels(queryset: QuerySet[AuditEvent], text: str) -> QuerySet[AuditEvent]:
    """Events whose label holds every word of `text` (full-text on PostgreSQL, substrings elsewhere)."""
    words = search_words(text)
    if not words:
        return queryset
    if connection.vendor == "postgresql":
        return queryset.filter(LabelMatches(words))
    condition = Q()
    for word in words:
        condition &= Q(object_label__icontains=word)
    return queryset.filter(condition)


# --- Keyset pages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    events: list[AuditEvent]
    newer: int | None  # pass as ?after= for the page of newer events
    older: int | None  # pass as ?before= for the page of older events


def keyset_page(queryset: QuerySet[AuditEvent], *, before: int | None = None, after: int | None = None,
                size: int = PAGE_SIZE, any_of: list[Q] | None = None) -> Page:
    """One page, newest first: a fixed number of queries of size + 1 rows whatever the table holds.

    `before` pages towards older events, `after` towards newer ones; the links say whether
    another page exists in each direction only as far as one extra row can tell (there is
    no COUNT, which would read every matching row). `any_of` restricts to events matching
    any of several conditions (an object and its versions); see _select for why that is not
    simply an OR.
    """
    if after is not None:
        rows = _select(queryset, any_of, Q(id__gt=after), ascending=True, limit=size + 1)
        more_newer = len(rows) > size
        events = list(reversed(rows[:size]))
        return Page(events, events[0].id if more_newer and events else None,
                    events[-1].id if events else None)
    bound = Q(id__lt=before) if before is not None else Q()
    rows = _select(queryset, any_of, bound, ascending=False, limit=size + 1)
    events = rows[:size]
    return Page(events, events[0].id if before is not None and events else None,
                events[-1].id if len(rows) > size else None)


def _select(queryset: QuerySet[AuditEvent], any_of: list[Q] | None, bound: Q, *, ascending: bool,
            limit: int) -> list[AuditEvent]:
    """The first `limit` events in id order matching `bound` and any one of `any_of`.

    On PostgreSQL several conditions become a UNION ALL of per-condition index scans, each
    limited, merged in id order: the cost is `limit` rows per condition however many events
    match. An OR would make PostgreSQL collect every match and sort them, which grows with
    the history. (SQLite, whose compound queries cannot be limited per part, gets the OR.)
    """
    order = "id" if ascending else "-id"
    if not any_of or len(any_of) == 1 or connection.vendor != "postgresql":
        condition = functools.reduce(operator.or_, any_of) if any_of else Q()
        return list(queryset.filter(bound, condition).order_by(order)[:limit])
    parts = [queryset.filter(bound, condition).order_by(order).values_list("id", flat=True)[:limit]
             for condition in any_of]
    ids = list(parts[0].union(*parts[1:], all=True).order_by(order)[:limit])
    found = queryset.in_bulk(ids)
    return [found[event_id] for event_id in ids if event_id in found]


def cursor(value: str | None) -> int | None:
    """A keyset cursor from the query string; anything but a positive integer means none."""
    if value and value.isdigit() and len(value) < 19:
        return int(value)
    return None


# --- Diffs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "same", "added", "removed"
    text: str


@dataclass
class FieldChange:
    """One entry of an event's changes, ready to show."""

    name: str
    kind: str  # "changed", "set", "cleared", "detail"
    before: str = ""
    after: str = ""
    lines: list[DiffLine] = field(default_factory=list)  # a line diff, for long or structured values

    @property
    def multiline(self) -> bool:
        return bool(self.lines)

    @property
    def block(self) -> bool:
        """The value to show spans lines (JSON documents, scripts): show it preformatted."""
        return "\n" in self.after


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str | int | float) for item in value):
        inline = ", ".join(str(item) for item in value)
        if len(inline) <= 100:  # short lists (layers, regions) read better on one line
            return inline
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _is_pair(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2


def describe_changes(changes: Any) -> list[FieldChange]:
    """An event's `changes` as readable entries, secrets redacted again.

    {"field": [before, after]} pairs become changed/set/cleared entries, with a line diff
    when either side is long or structured; anything else is shown as a detail.
    """
    changes = redact(changes)
    if not isinstance(changes, dict):
        return [FieldChange("detail", "detail", after=_show(changes))] if changes not in (None, "", []) else []
    described = []
    for name in changes:
        value = changes[name]
        if not _is_pair(value):
            described.append(FieldChange(str(name), "detail", after=_show(value)))
            continue
        before, after = value
        kind = "set" if before is None else "cleared" if after is None else "changed"
        entry = FieldChange(str(name), kind, before=_show(before), after=_show(after))
        if kind == "changed" and ("\n" in entry.before + entry.after or len(entry.before) + len(entry.after) > 120):
            entry.lines = line_diff(entry.before, entry.after)
        described.append(entry)
    return described


def line_diff(before: str, after: str, context: int = 3) -> list[DiffLine]:
    """The changed lines with a little context, as in `diff -u` without the headers."""
    lines: list[DiffLine] = []
    old, new = before.splitlines(), after.splitlines()
    for group in difflib.SequenceMatcher(None, old, new, autojunk=False).get_grouped_opcodes(context):
        if lines:
            lines.append(DiffLine("skip", "…"))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines += [DiffLine("same", text) for text in old[i1:i2]]
                continue
            lines += [DiffLine("removed", text) for text in old[i1:i2]]
            lines += [DiffLine("added", text) for text in new[j1:j2]]
    return lines


# --- Links to what an event is about ------------------------------------------------------------------


def object_links(event: AuditEvent) -> dict[str, str]:
    """URL arguments for pages about the event's object, derived without a query.

    build -> its provenance (object_id is the build's UUID); gold image versions -> their
    image's history (the label is slug@version).
    """
    links: dict[str, str] = {}
    if event.object_type == "build" and _looks_like_uuid(event.object_id):
        links["build"] = event.object_id
    elif event.object_type == "goldimageversion" and "@" in event.object_label:
        links["gold"] = event.object_label.split("@", 1)[0]
    return links


def _looks_like_uuid(value: str) -> bool:
    return re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", value or "") is not None


# --- Rows as the pages show them ------------------------------------------------------------------
# Built in Python rather than with {% url %} and {% include %} per row: a page of 50 events
# then renders in a few milliseconds, so page time does not depend on what the rows hold.

_SIGN = {"removed": "\u2212", "added": "+", "same": " "}
_CELL = {"removed": "del", "added": "ins", "same": ""}
_SPOKEN = {"removed": "removed: ", "added": "added: ", "same": ""}  # for screen readers


def changes_html(changes: list[FieldChange]) -> SafeString:
    """The <dl> of an event's changes: before/after inline, or a line diff for long values."""
    return format_html('<dl class="changes">{}</dl>', format_html_join("", "{}", ((_change_html(c),) for c in changes)))


def _change_html(change: FieldChange) -> SafeString:
    note = {"set": " (set)", "cleared": " (cleared)"}.get(change.kind, "")
    head = format_html('<dt><code>{}</code><small class="muted">{}</small></dt>', change.name, note)
    if change.multiline:
        body = format_html('<table class="diff"><caption class="visually-hidden">Changes to {}: removed lines '
                           'marked \u2212, added lines marked +</caption><tbody>{}</tbody></table>',
                           change.name, format_html_join("", "{}", ((_line_html(line),) for line in change.lines)))
    elif change.kind == "changed":
        body = format_html('<del aria-label="before">{}</del> <span aria-hidden="true">\u2192</span> '
                           '<ins aria-label="after">{}</ins>', change.before or "(empty)", change.after or "(empty)")
    elif change.kind == "set":
        body = format_html('<ins aria-label="set to">{}</ins>', _value_html(change.after))
    elif change.kind == "cleared":
        body = format_html('<del aria-label="was">{}</del>', change.before or "(empty)")
    else:
        body = _value_html(change.after)
    return format_html("{}<dd>{}</dd>", head, body)


def _line_html(line: DiffLine) -> SafeString:
    if line.kind == "skip":
        return format_html('<tr class="skip"><td>{}</td></tr>', "\u2026")
    return format_html('<tr class="{}"><td class="{}"><span class="sign" aria-hidden="true">{}</span>'
                       '<span class="visually-hidden">{}</span>{}</td></tr>',
                       line.kind, _CELL[line.kind], _SIGN[line.kind], _SPOKEN[line.kind], line.text)


def _value_html(text: str) -> SafeString:
    if "\n" in text:
        return format_html("<pre>{}</pre>", text)
    return escape(text or "(empty)")


@dataclass
class Row:
    """One event with everything its table row shows, URLs included."""

    event: AuditEvent
    label: str
    changes: list[FieldChange]
    url: str
    provenance_url: str = ""
    gold_url: str = ""
    object_url: str = ""

    @property
    def changes_html(self) -> SafeString:
        return changes_html(self.changes)


_PLACEHOLDER_UUID = "00000000-0000-0000-0000-00000000abcd"


@functools.lru_cache(maxsize=16)
def _url_patterns(script_prefix: str) -> dict[str, str]:
    """URLs with a placeholder, reversed once: rows fill them in with str.replace."""
    return {"event": reverse("portal:audit-event", args=["EVENTHASH"]),
            "provenance": reverse("portal:audit-provenance", args=[_PLACEHOLDER_UUID]),
            "gold": reverse("portal:gold-history", args=["goldslug"]),
            "history": reverse("portal:audit-history")}


def row(event: AuditEvent) -> Row:
    """The event as a table row shows it: label and changes redacted, links to its pages."""
    urls = _url_patterns(get_script_prefix())
    links = object_links(event)
    object_url = ""
    if event.object_id:
        object_url = urls["history"] + "?" + urlencode({"object_type": event.object_type, "object_id": event.object_id})
    return Row(
        event=event, label=redact(event.object_label), changes=describe_changes(event.changes),
        url=urls["event"].replace("EVENTHASH", event.hash),
        provenance_url=urls["provenance"].replace(_PLACEHOLDER_UUID, links["build"]) if "build" in links else "",
        gold_url=urls["gold"].replace("goldslug", quote(links["gold"])) if "gold" in links else "",
        object_url=object_url,
    )
