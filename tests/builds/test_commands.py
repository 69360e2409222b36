"""exporttemplate and seeddemo."""

import json
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from builds import selectors, services
from builds.demo import DEMO_USERS
from builds.models import GoldImageVersion, LayerVersion
from portal.models import AuditEvent, Membership
from tests import factories


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_exporttemplate_prints_the_composed_body(web):
    gold_version = factories.make_gold_version()
    layer = factories.make_layer(web, gold_version.gold_image, "app")
    factories.make_layer_version(layer, customize=[{"type": "Shell", "name": "app", "inline": ["echo app"]}])
    body = json.loads(run("exporttemplate", gold_version.gold_image.slug, "1.0.0", "--layer", "web/app@1.0.0"))
    assert [s["name"] for s in body["properties"]["customize"]] == ["update", "app", "audit"]
    assert body["tags"]["goldsmith.layers"] == "web/app@1.0.0"


@pytest.mark.django_db
@pytest.mark.parametrize("args, message", [
    (["nope", "1.0.0"], "No gold image version nope@1.0.0"),
    (["{gold}", "1.0.0", "--layer", "web-app-1.0.0"], "not a layer reference"),
    (["{gold}", "1.0.0", "--layer", "web/missing@1.0.0"], "No layer version web/missing@1.0.0"),
])
def test_exporttemplate_explains_bad_references(args, message, web):
    gold_version = factories.make_gold_version()
    args = [arg.format(gold=gold_version.gold_image.slug) for arg in args]
    with pytest.raises(CommandError, match=message):
        run("exporttemplate", *args)


@pytest.mark.django_db
def test_exporttemplate_refuses_a_layer_of_another_gold_image(web):
    gold_version = factories.make_gold_version()
    other = factories.make_gold_version()
    factories.make_layer_version(factories.make_layer(web, other.gold_image, "other"))
    with pytest.raises(CommandError, match="extends"):
        run("exporttemplate", gold_version.gold_image.slug, "1.0.0", "--layer", "web/other@1.0.0")


@pytest.mark.django_db
@pytest.mark.parametrize("gold, layer, message", [
    ("1.1.0", None, "is draft: only published or deprecated versions can be built"),
    ("1.0.0", "web/app@1.1.0", "web/app@1.1.0 is draft: publish it before building"),
    ("1.0.0", "web/app@2.0.0", "web/app@2.0.0 accepts gold versions ^2, not 1.0.0: make a layer version that "
                               "accepts it"),
])
def test_exporttemplate_refuses_what_a_build_request_refuses_with_the_same_reason(web, gold, layer, message):
    gold_version = factories.make_gold_version()
    factories.make_gold_version(gold_version.gold_image, "1.1.0", publish=False)
    app = factories.make_layer(web, gold_version.gold_image, "app")
    factories.make_layer_version(app, "1.1.0", publish=False)
    factories.make_layer_version(app, "2.0.0", accepts="^2")
    args = [gold_version.gold_image.slug, gold, *(["--layer", layer] if layer else [])]
    with pytest.raises(CommandError, match=re.escape(message)) as refused:
        run("exporttemplate", *args)
    assert refused.value.returncode == 1
    # The same problem a build request (the pages, the API, startbuild) is refused with.
    with pytest.raises(services.ServiceError) as request_refused:
        services.build_request(actor="system", gold_version=GoldImageVersion.objects.get(version=gold),
                               layer_versions=[selectors.layer_version_get(layer)] if layer else [])
    assert [problem.message for problem in request_refused.value.problems] == str(refused.value).splitlines()


@pytest.mark.django_db
def test_seeddemo_creates_the_demo_once():
    first = run("seeddemo")
    assert "Created user alice" in first
    events = AuditEvent.objects.count()
    assert run("seeddemo") == "Demo data already present.\n"
    assert AuditEvent.objects.count() == events
    assert GoldImageVersion.objects.filter(status="published").count() == 2
    assert LayerVersion.objects.filter(status="published").count() == 2
    for person in DEMO_USERS:
        assert Membership.objects.filter(user__username=person["username"], role=person["role"]).exists()
    linux = GoldImageVersion.objects.get(gold_image__slug="ubuntu-2204-base")
    assert linux.security_type == "TrustedLaunch" and linux.hyper_v_generation == "V2"
    assert linux.distribute[0]["type"] == "SharedImage"
