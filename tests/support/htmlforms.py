"""What a browser would submit: the values of a page's form, read from its HTML."""

from __future__ import annotations

from html.parser import HTMLParser


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.inside = False
        self.forms: list[dict[str, str]] = []
        self.values: dict[str, str] = {}
        self._textarea: str | None = None
        self._select: str | None = None
        self._select_first: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            if attrs.get("method", "").lower() == "post":
                self.inside, self.values = True, {}
                self.forms.append(self.values)
            return
        if not self.inside:
            return
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.values[name] = attrs.get("value", "on")
            elif kind not in ("submit", "button"):
                self.values[name] = attrs.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.values[name] = ""
        elif tag == "select" and name:
            self._select, self._select_first = name, None
        elif tag == "option" and self._select:
            value = attrs.get("value", "")
            if self._select_first is None:
                self._select_first = value
                self.values.setdefault(self._select, value)
            if "selected" in attrs:
                self.values[self._select] = value

    def handle_endtag(self, tag):
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data):
        if self._textarea:
            # A browser drops the one newline right after <textarea>.
            value = self.values[self._textarea] + data
            self.values[self._textarea] = value.removeprefix("\n") if not self.values[self._textarea] else value


def form_values(html: str, field: str) -> dict[str, str]:
    """The name/value pairs of the page's first POST form that has a field named `field`, as a
    browser submits them unchanged."""
    parser = _Form()
    parser.feed(html)
    found = [values for values in parser.forms if field in values]
    assert found, f"no form with a field named {field}"
    return found[0]
