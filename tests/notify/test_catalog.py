"""docs/events.md and notify/catalog.py agree; the documented verification snippet works."""

from __future__ import annotations

import re
from pathlib import Path

from builds import lifecycle
from builds.models import Build
from notify import catalog, services
from tests.notify.conftest import drain
from tests.support import build_rows

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def documented_section() -> str:
    text = DOC.read_text()
    start = text.index("-->\n", text.index("<!-- catalog:start")) + 4
    return text[start:text.index("<!-- catalog:end -->")]


def test_the_docs_list_every_type_with_its_schema():
    assert documented_section() == catalog.markdown(), "regenerate the section with notify.catalog.markdown()"


def test_type_names_are_stable_dotted_names():
    for event in catalog.TYPES:
        assert re.fullmatch(r"[a-z]+\.[a-z_]+", event.name)
        assert event.name.split(".")[0] in {"build", "approval", "version", "rollout", "source", "audit"}
        assert set(event.object_schema["required"]) >= {"id"}


def test_the_documented_snippet_verifies_a_real_delivery(world, receiver):
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "docs/events.md", "exec"), namespace)
    ok = namespace["goldsmith_signature_ok"]
    _, secret = services.endpoint_create(actor=world.bob, kind="webhook", url=receiver.url,
                                         event_types=["build.failed"], department=world.web)
    build = build_rows.running(world.gold_version, [world.web_layer_version], requested_by=world.bob)
    lifecycle.transition(build, state=Build.State.FAILED)
    drain()
    (request,) = receiver.requests
    header = request["headers"]["X-Goldsmith-Signature"]
    assert ok(secret, header, request["body"])
    assert not ok(secret, header, request["body"].replace(b"failed", b"passed"))
    assert not ok("whsec_wrong", header, request["body"])
