"""What each channel receives for an event (pure: event body in, payload out).

- generic webhooks: the event body itself, as compact JSON (the bytes that are signed);
- Microsoft Teams: a message with one Adaptive Card attachment (schema 1.4: a TextBlock title,
  a FactSet, an Action.OpenUrl to the page), the shape Teams incoming webhooks and
  Workflows accept;
- Slack: Block Kit (`header`, `section` with mrkdwn `fields`, `actions` with a link button,
  `context`) plus the top-level `text` fallback that notifications and screen readers show;
- e-mail: a subject, plain text and a simple HTML part.
Limits (Slack: header 150 characters, field 2000, section text 3000, 10 fields) are applied here.
"""

from __future__ import annotations

import json
from typing import Any

from django.utils.html import escape

from notify import catalog

_TEAMS_COLOURS = {"good": "Good", "warning": "Warning", "attention": "Attention", "info": "Default"}


def body_bytes(body: dict[str, Any]) -> bytes:
    """The exact bytes posted (and signed) for a generic webhook."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def _object(body: dict[str, Any]) -> dict[str, Any]:
    return body.get(catalog.get(body["type"]).family) or {}


def title(body: dict[str, Any]) -> str:
    event = catalog.get(body["type"])
    obj = _object(body)
    if event.family == "build":
        return f"{event.title}: {obj.get('gold_image')} {obj.get('gold_version')}" + (
            f" ({obj['department']})" if obj.get("department") else "")
    if event.family in ("version", "rollout"):
        return f"{event.title}: {obj.get('gold_image')} {obj.get('version')}"
    if event.family == "source":
        return f"{event.title}: {obj.get('publisher')}/{obj.get('offer')}/{obj.get('sku')} {obj.get('version')}"
    return event.title


def facts(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs shown by every channel: the object's scalar fields that are set."""
    pairs = []
    for key, value in _object(body).items():
        if value in (None, "", []) or isinstance(value, dict):
            continue
        text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        pairs.append((key.replace("_", " ").capitalize(), text))
    pairs.append(("Event", body["type"]))
    return pairs


def teams(body: dict[str, Any]) -> dict[str, Any]:
    event = catalog.get(body["type"])
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": title(body), "weight": "Bolder", "size": "Medium", "wrap": True,
             "color": _TEAMS_COLOURS[event.severity]},
            {"type": "TextBlock", "text": event.summary, "wrap": True, "isSubtle": True},
            {"type": "FactSet", "facts": [{"title": label, "value": value[:500]} for label, value in facts(body)]},
        ],
        "actions": [{"type": "Action.OpenUrl", "title": "Open in Goldsmith", "url": body["link"]}],
    }
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}


def _mrkdwn_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(body: dict[str, Any]) -> dict[str, Any]:
    event = catalog.get(body["type"])
    heading = title(body)
    fields = [{"type": "mrkdwn", "text": f"*{label}*\n{_mrkdwn_escape(value)}"[:2000]}
              for label, value in facts(body)[:10]]
    return {
        "text": f"{heading}: {event.summary}"[:3000],
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": heading[:150], "emoji": False}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn_escape(event.summary)[:3000]},
             "fields": fields},
            {"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Open in Goldsmith"}, "url": body["link"],
                 "action_id": "open"}]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{body['type']} · {body['occurred_at']}"}]},
        ],
    }


def email(body: dict[str, Any], unsubscribe_url: str = "") -> tuple[str, str, str]:
    """(subject, plain text, HTML) of one event's message."""
    event = catalog.get(body["type"])
    heading = title(body)
    lines = [heading, "", event.summary, ""] + [f"{label}: {value}" for label, value in facts(body)]
    lines += ["", f"Open: {body['link']}"]
    if unsubscribe_url:
        lines += ["", f"Stop these messages: {unsubscribe_url}"]
    rows = "".join(f"<tr><th align=\"left\">{escape(label)}</th><td>{escape(value)}</td></tr>"
                   for label, value in facts(body))
    html = (f"<h2>{escape(heading)}</h2><p>{escape(event.summary)}</p><table>{rows}</table>"
            f"<p><a href=\"{escape(body['link'])}\">Open in Goldsmith</a></p>")
    if unsubscribe_url:
        html += f"<p><small><a href=\"{escape(unsubscribe_url)}\">Stop these messages</a></small></p>"
    return f"[Goldsmith] {heading}", "\n".join(lines) + "\n", html


def digest(bodies: list[dict[str, Any]], unsubscribe_url: str = "") -> tuple[str, str, str]:
    """(subject, plain text, HTML) of one message summing up several events."""
    subject = f"[Goldsmith] {len(bodies)} notifications"
    lines = [f"{len(bodies)} events since the last message:", ""]
    items = []
    for body in bodies:
        lines.append(f"- {title(body)} ({body['occurred_at']}): {body['link']}")
        items.append(f"<li><a href=\"{escape(body['link'])}\">{escape(title(body))}</a> "
                     f"<small>{escape(body['occurred_at'])}</small></li>")
    if unsubscribe_url:
        lines += ["", f"Manage or stop these messages: {unsubscribe_url}"]
    html = f"<h2>{escape(subject)}</h2><ul>{''.join(items)}</ul>"
    if unsubscribe_url:
        html += f"<p><small><a href=\"{escape(unsubscribe_url)}\">Manage or stop these messages</a></small></p>"
    return subject, "\n".join(lines) + "\n", html
