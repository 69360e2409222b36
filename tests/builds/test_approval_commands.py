"""requestpublish, approve, reject: ids and states alone on standard output; exit 1 with the reason."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from builds.models import GoldImageVersion, LayerVersion, PublishRequest
from tests import factories

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[int, str, str]:
    out = StringIO()
    try:
        call_command(*args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), str(exc)
    return 0, out.getvalue(), ""


def test_alice_requests_and_frank_approves_a_gold_version(alice, frank, azure_emulator):
    draft = factories.make_gold_version(actor=alice, publish=False)
    code, out, _ = run("requestpublish", draft.gold_image.slug, "1.0.0", "--user", "alice")
    assert code == 0
    request = PublishRequest.objects.get()
    assert out.strip() == str(request.uuid)

    assert run("approve", str(request.uuid), "--user", "alice")[:1] == (1,)
    code, _, err = run("approve", str(request.uuid), "--user", "alice")
    assert "four eyes" in err

    assert run("approve", str(request.uuid), "--user", "frank", "--comment", "ok") == (0, "approved\n", "")
    assert GoldImageVersion.objects.get(pk=draft.pk).status == "published"


def test_bob_requests_a_layer_and_grace_rejects_it(bob, grace, web, azure_emulator):
    gold_version = factories.make_gold_version()
    layer = factories.make_layer(web, gold_version.gold_image, slug="nginx", actor=bob)
    factories.make_layer_version(layer, publish=False, actor=bob)
    code, out, _ = run("requestpublish", "web/nginx", "1.0.0", "--user", "bob")
    assert code == 0
    request_id = out.strip()
    code, _, err = run("reject", request_id, "--user", "grace", "--comment", "")
    assert code == 1
    assert "Say why" in err
    assert run("reject", request_id, "--user", "grace", "--comment", "pin the package version") == (
        0, "rejected\n", "")
    assert LayerVersion.objects.get(layer=layer).status == "draft"


def test_unknown_ids_and_users_are_refused(alice):
    assert run("approve", "not-a-uuid", "--user", "alice")[2] == "'not-a-uuid' is not a request id."
    assert run("approve", "00000000-0000-0000-0000-000000000000", "--user", "alice")[0] == 1
    assert run("requestpublish", "nope", "1.0.0", "--user", "alice")[0] == 1
    assert run("requestpublish", "nope", "1.0.0", "--user", "ghost")[2] == "No active user called ghost."
