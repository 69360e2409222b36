"""The approvals pages: the queue on the home page, a request with its diff, the decision form,
withdrawal, promotion requests, break-glass and the report."""

from __future__ import annotations

import pytest
from django.urls import reverse

from builds import approvals
from builds.models import GoldImageVersion, PublishRequest
from portal.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(alice):
    image = factories.make_gold_image("ubuntu", actor=alice)
    published = factories.make_gold_version(image, "1.0.0", actor=alice)
    draft = factories.make_gold_version(image, "1.1.0", actor=alice, publish=False,
                                        vm_profile={"vmSize": "Standard_D4ds_v5"})
    return published, draft


@pytest.fixture
def pending(alice, versions):
    return approvals.publish_request_create(actor=alice, target=versions[1], extra_problems=[])


def test_the_approver_sees_the_request_on_home_and_its_diff(client, frank, pending):
    client.force_login(frank)
    home = client.get(reverse("portal:home")).content.decode()
    assert "Waiting for your approval" in home and str(pending.uuid) in home
    page = client.get(reverse("builds:approval-detail", args=[pending.uuid])).content.decode()
    assert "Changes since ubuntu@1.0.0" in page
    assert "Standard_D4ds_v5" in page
    assert "Record my decision" in page


def test_the_author_is_told_why_they_cannot_decide(client, alice, pending):
    client.force_login(alice)
    page = client.get(reverse("builds:approval-detail", args=[pending.uuid])).content.decode()
    assert "Record my decision" not in page
    assert "somebody else must approve it (four eyes)" in page
    response = client.post(reverse("builds:approval-decide", args=[pending.uuid]), {"verdict": "approve"})
    assert response.status_code == 403
    assert AuditEvent.objects.filter(action="access.denied").exists()
    assert PublishRequest.objects.get(pk=pending.pk).state == "pending"


def test_frank_approves_and_the_version_is_published(client, frank, pending, versions):
    client.force_login(frank)
    response = client.post(reverse("builds:approval-decide", args=[pending.uuid]),
                           {"verdict": "approve", "comment": "fine"})
    assert response.status_code == 302
    assert GoldImageVersion.objects.get(pk=versions[1].pk).status == "published"


def test_a_rejection_without_a_comment_is_refused_with_the_reason(client, frank, pending):
    client.force_login(frank)
    response = client.post(reverse("builds:approval-decide", args=[pending.uuid]), {"verdict": "reject"},
                           follow=True)
    assert "Say why" in response.content.decode()
    assert PublishRequest.objects.get(pk=pending.pk).state == "pending"


def test_the_author_withdraws(client, alice, pending):
    client.force_login(alice)
    client.post(reverse("builds:approval-withdraw", args=[pending.uuid]))
    assert PublishRequest.objects.get(pk=pending.pk).state == "withdrawn"


def test_a_promotion_is_requested_from_the_page(client, alice, versions):
    client.force_login(alice)
    url = reverse("builds:approval-promote", args=["ubuntu", "1.0.0"])
    response = client.post(url, {"channel": "production", "comment": ""})
    made = PublishRequest.objects.get(kind="promotion")
    assert response.url == reverse("builds:approval-detail", args=[made.uuid])
    assert made.channel.name == "production"


def test_break_glass_is_marked_in_words_on_the_request_and_the_report(client, erin, dave, versions,
                                                                       azure_emulator):
    client.force_login(erin)
    url = reverse("builds:approval-break-glass", args=["ubuntu", "1.1.0"])
    assert client.post(url, {"reason": ""}).status_code == 422
    response = client.post(url, {"reason": "INC-1: cannot wait"})
    assert response.status_code == 302
    made = PublishRequest.objects.get(break_glass=True)
    client.force_login(dave)
    page = client.get(reverse("builds:approval-detail", args=[made.uuid])).content.decode()
    assert "BREAK-GLASS: no approvals" in page and "INC-1: cannot wait" in page
    report = client.get(reverse("builds:approval-report")).content.decode()
    assert "BREAK-GLASS: no approvals" in report and "1 BREAK-GLASS publication" in report


def test_editors_of_another_department_never_see_a_layer_request(client, bob, carol, web, versions):
    layer_version = factories.make_layer_version(factories.make_layer(web, versions[0].gold_image, actor=bob),
                                                 publish=False, actor=bob)
    made = approvals.publish_request_create(actor=bob, target=layer_version, extra_problems=[])
    client.force_login(carol)
    assert client.get(reverse("builds:approval-detail", args=[made.uuid])).status_code == 404
    assert str(made.uuid) not in client.get(reverse("builds:approval-list")).content.decode()
