"""Template helpers shared by every page: times, durations, badges, code, navigation."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django import template
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.urls import reverse
from django.utils import timezone
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe
from pygments import highlight as pygments_highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import BashLexer, JsonLexer, PowerShellLexer, TextLexer

from builds import access, compose
from builds.timeline import format_duration
from portal.text import INVISIBLE_CHARACTERS, character_label

register = template.Library()

_LEXERS = {"shell": BashLexer, "bash": BashLexer, "powershell": PowerShellLexer, "json": JsonLexer}
_FORMATTER = HtmlFormatter(nowrap=True)


@register.simple_tag
def when(value: dt.datetime | None, relative: bool = True):
    """<time> in the active zone (see portal/timezones.py), with a relative time after it."""
    if not value:
        return mark_safe('<span class="muted">never</span>')
    local = timezone.localtime(value)
    text = local.strftime("%-d %b %Y, %H:%M ") + (local.tzname() or "")
    title = local.isoformat(timespec="seconds")
    if not relative:
        return format_html('<time datetime="{}" title="{}">{}</time>', value.isoformat(), title, text)
    return format_html('<time datetime="{}" title="{}">{}</time> <span class="rel">({})</span>',
                       value.isoformat(), title, text, naturaltime(value))


@register.filter
def duration(value: Any) -> str:
    """Seconds (or a timedelta) as 4m 05s."""
    if value is None or value == "":
        return ""
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    return format_duration(float(value))


@register.filter
def between(start: dt.datetime | None, end: dt.datetime | None) -> str:
    if not start:
        return ""
    return format_duration(((end or timezone.now()) - start).total_seconds())


@register.simple_tag
def state_badge(build) -> str:
    """The build's state (and Image Builder's sub-state while running) as a badge."""
    label = build.get_state_display()
    if build.sub_state and build.state in ("running", "canceling"):
        label = f"{label} · {build.sub_state[:1].upper()}{build.sub_state[1:]}"
    return format_html('<span class="badge state-{}">{}</span>', build.state, label)


@register.simple_tag
def status_badge(version) -> str:
    return format_html('<span class="badge status-{}">{}</span>', version.status, version.get_status_display())


def _visible(match) -> str:
    label = character_label(match.group())
    return f'<span class="invisible-char" title="{label}">\u27e8{label.split(" ", 1)[0]}\u27e9</span>'


def _reveal_invisible(html: str) -> str:
    # Bidirectional overrides, zero-width and control characters make a script read differently
    # from what runs; every one is shown as a marked ⟨U+XXXX⟩. `html` is already escaped, and the
    # replacement is fixed markup, so the result stays safe.
    return INVISIBLE_CHARACTERS.sub(_visible, html)


@register.filter
def highlight(code: Any, language: str = "") -> str:
    """Server-side syntax highlighting (Pygments) into token spans; the caller wraps it in <pre><code>.
    Invisible and bidirectional characters are shown as ⟨U+XXXX⟩ (see `reveal`)."""
    if isinstance(code, list | tuple):
        code = "\n".join(str(line) for line in code)
    lexer = _LEXERS.get((language or "").lower(), TextLexer)()
    # Pygments would turn some controls into nothing or a newline: mark them before it sees them.
    placeholders = {}

    def hold(match) -> str:
        key = f"\ue000{len(placeholders)}\ue001"
        placeholders[key] = _visible(match)
        return key

    held = INVISIBLE_CHARACTERS.sub(lambda m: m.group() if m.group() in "\n\t" else hold(m), str(code))
    html = pygments_highlight(held, lexer, _FORMATTER).rstrip("\n")
    for key, markup in placeholders.items():
        html = html.replace(key, markup)
    return mark_safe(html)  # noqa: S308 - Pygments escapes the code; the markers are fixed markup


@register.filter
def reveal(text: Any) -> str:
    """Escape `text` and show each invisible, bidirectional or control character as ⟨U+XXXX⟩."""
    return mark_safe(_reveal_invisible(str(conditional_escape(text))))  # noqa: S308 - escaped first


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@register.inclusion_tag("_nav.html", takes_context=True)
def main_nav(context) -> dict:
    """The main navigation: only the pages the user's roles open."""
    request = context["request"]
    roles = access.roles_of(request.user)
    path = request.path
    links: list[tuple[str, str]] = [("Home", reverse("portal:home"))]
    if roles.security or roles.editor or roles.auditor:
        links += [("Gold images", reverse("builds:gold-list")), ("Layers", reverse("builds:layer-list")),
                  ("Builds", reverse("builds:build-list"))]
    if roles.security or roles.auditor:
        links.append(("History", reverse("portal:audit-history")))
    if roles.security or roles.editor or roles.auditor:
        links.append(("Approvals", reverse("builds:approval-list")))
        links.append(("Rollouts", reverse("builds:rollout-list")))  # editors see their departments' entries
        links.append(("Policy", reverse("builds:policy")))
        links.append(("Check a template", reverse("builds:checktemplate")))  # web/views_checks.py READERS
    elif roles.admin:  # the admin role reads builds (read-only), from the operator page's figures
        links.append(("Builds", reverse("builds:build-list")))
    if roles.admin:
        links.append(("Operator", reverse("portal:operator")))
    items = []
    for label, url in links:
        current = path == url if url == "/" else path.startswith(url)
        items.append({"label": label, "url": url, "current": current})
    return {"items": items}


@register.filter
def source_label(source: dict) -> str:
    """An Image Builder source object in one line."""
    source = source or {}
    if source.get("type") == "PlatformImage":
        parts = [source.get(key, "") for key in ("publisher", "offer", "sku", "version")]
        return " / ".join(part for part in parts if part)
    return source.get("imageVersionId") or source.get("imageId") or source.get("type") or "not set"


@register.filter
def target_label(target: dict) -> str:
    """Where a distributor puts the image."""
    target = target or {}
    return target.get("galleryImageId") or target.get("imageId") or target.get("uri") or "staging storage"


@register.inclusion_tag("builds/_tags.html")
def composed_tags(gold_version, layers=None, heading: str = "Tags") -> dict:
    """The tags a composition of `gold_version` with `layers` carries, with who sets each, and the
    layer values it ignores (compose.effective_tags). `layers` is a layer version, a list of them
    or a build's BuildLayer rows."""
    if gold_version in (None, ""):
        return {"heading": heading, "effective": [], "overridden": []}
    items = [] if not layers else list(layers) if hasattr(layers, "__iter__") else [layers]
    report = compose.effective_tags(gold_version, [getattr(item, "layer_version", item) for item in items])
    return {"heading": heading, "effective": report.effective, "overridden": report.overridden}


@register.simple_tag
def overridden_by_gold(gold_version, layer_versions) -> list[compose.Tag]:
    """The tag values of each layer version that `gold_version` overrides, each layer composed alone."""
    return [tag for layer_version in layer_versions or []
            for tag in compose.effective_tags(gold_version, [layer_version]).overridden]
