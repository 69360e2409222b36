"""Four-eyes publishing (builds/approvals.py): requests, decisions, stale content, break-glass,
channels; exactly one audit event per service call, in its transaction.

| who | gold request | gold approve | layer (web) request | layer (web) approve |
| --- | --- | --- | --- | --- |
| alice (security, author) | yes | no: four eyes | no | yes |
| frank (security) | yes | yes | no | yes |
| bob (web editor, author) | no | no | yes | no: four eyes |
| grace (web editor) | no | no | yes | yes |
| carol (data editor) | no | no | no | no |
| dave (auditor), erin (admin) | no | no | no | no |
"""

from __future__ import annotations

import pytest

from builds import approvals, services
from builds.models import Build, Channel, GoldImageVersion, LayerVersion, PublishRequest
from portal.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db


def events_since(mark: int) -> list[str]:
    return list(AuditEvent.objects.filter(id__gt=mark).order_by("id").values_list("action", flat=True))


def last_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


@pytest.fixture
def draft(alice):
    return factories.make_gold_version(actor=alice, publish=False)


@pytest.fixture
def layer_draft(bob, web):
    gold_version = factories.make_gold_version()
    layer = factories.make_layer(web, gold_version.gold_image, actor=bob)
    return factories.make_layer_version(layer, publish=False, actor=bob)


def test_it_publishes_a_gold_version_on_the_second_persons_approval(alice, frank, draft, azure_emulator):
    mark = last_id()
    request = approvals.publish_request_create(actor=alice, target=draft, comment="monthly baseline")
    assert events_since(mark) == ["publish_request.create"]
    assert request.state == "pending"
    assert len(request.content_sha256) == 64
    draft.refresh_from_db()
    assert draft.status == "draft"

    mark = last_id()
    request = approvals.publish_request_approve(actor=frank, request=request, comment="looks right")
    assert request.state == "approved"
    draft.refresh_from_db()
    assert draft.status == "published"
    assert draft.published_by == frank
    assert events_since(mark) == ["gold_version.publish"]
    event = AuditEvent.objects.get(id=last_id())
    assert event.changes["approved_by"] == [None, ["frank"]]
    assert event.changes["requested_by"] == [None, "alice"]
    assert event.changes["request"] == [None, str(request.uuid)]


def test_the_author_never_approves_their_own_request(alice, draft, azure_emulator):
    request = approvals.publish_request_create(actor=alice, target=draft)
    mark = last_id()
    with pytest.raises(approvals.NotAllowed, match="four eyes"):
        approvals.publish_request_approve(actor=alice, request=request)
    assert events_since(mark) == []
    assert PublishRequest.objects.get(pk=request.pk).state == "pending"


@pytest.mark.parametrize("persona", ["bob", "carol", "dave", "erin"])
def test_only_the_security_team_approves_gold_versions(persona, request, alice, draft, azure_emulator):
    user = request.getfixturevalue(persona)
    publish_request = approvals.publish_request_create(actor=alice, target=draft)
    with pytest.raises(approvals.NotAllowed):
        approvals.publish_request_approve(actor=user, request=publish_request)


@pytest.mark.parametrize("persona", ["bob", "dave", "erin"])
def test_only_the_security_team_requests_gold_publishing(persona, request, draft):
    with pytest.raises(approvals.NotAllowed):
        approvals.publish_request_create(actor=request.getfixturevalue(persona), target=draft)


def test_a_change_after_the_request_voids_it(alice, frank, draft, azure_emulator):
    request = approvals.publish_request_create(actor=alice, target=draft)
    services.gold_version_update(actor=alice, gold_version=draft, tags={"sneaky": "change"})
    mark = last_id()
    with pytest.raises(approvals.StaleRequest):
        approvals.publish_request_approve(actor=frank, request=request)
    assert events_since(mark) == ["publish_request.supersede"]
    assert PublishRequest.objects.get(pk=request.pk).state == "superseded"
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_a_rejection_needs_a_comment_and_ends_the_request(alice, frank, draft, azure_emulator):
    request = approvals.publish_request_create(actor=alice, target=draft)
    with pytest.raises(services.ServiceError, match="Say why"):
        approvals.publish_request_reject(actor=frank, request=request, comment=" ")
    mark = last_id()
    request = approvals.publish_request_reject(actor=frank, request=request, comment="the audit step is missing")
    assert request.state == "rejected"
    assert events_since(mark) == ["publish_request.reject"]
    with pytest.raises(services.ServiceError, match="rejected"):
        approvals.publish_request_approve(actor=factories.make_user("x", role="security"), request=request)


def test_a_new_request_supersedes_the_pending_one(alice, draft, azure_emulator):
    first = approvals.publish_request_create(actor=alice, target=draft)
    second = approvals.publish_request_create(actor=alice, target=draft)
    assert PublishRequest.objects.get(pk=first.pk).state == "superseded"
    assert second.state == "pending"
    assert AuditEvent.objects.get(id=last_id()).changes["supersedes"] == [None, [str(first.uuid)]]


def test_the_author_withdraws_and_nobody_else_may(alice, frank, draft, azure_emulator):
    request = approvals.publish_request_create(actor=alice, target=draft)
    with pytest.raises(approvals.NotAllowed):
        approvals.publish_request_withdraw(actor=frank, request=request)
    assert approvals.publish_request_withdraw(actor=alice, request=request).state == "withdrawn"


def test_a_request_with_problems_is_refused_and_stores_nothing(alice, azure_emulator):
    broken = factories.make_gold_version(actor=alice, publish=False, identity="")
    broken = services.gold_version_update(actor=alice, gold_version=broken, distribute=[])
    mark = last_id()
    with pytest.raises(services.ServiceError):
        approvals.publish_request_create(actor=alice, target=broken)
    assert events_since(mark) == []
    assert not PublishRequest.objects.exists()


def test_a_layer_is_approved_by_another_editor_of_its_department(bob, grace, carol, layer_draft, azure_emulator):
    request = approvals.publish_request_create(actor=bob, target=layer_draft)
    with pytest.raises(approvals.NotAllowed, match="four eyes"):
        approvals.publish_request_approve(actor=bob, request=request)
    with pytest.raises(approvals.NotAllowed):
        approvals.publish_request_approve(actor=carol, request=request)
    mark = last_id()
    approvals.publish_request_approve(actor=grace, request=request)
    assert LayerVersion.objects.get(pk=layer_draft.pk).status == "published"
    assert events_since(mark) == ["layer_version.publish"]


def test_break_glass_is_for_administrators_with_a_reason(alice, erin, draft, azure_emulator):
    with pytest.raises(approvals.NotAllowed):
        approvals.gold_version_break_glass_publish(actor=alice, gold_version=draft, reason="urgent")
    with pytest.raises(services.ServiceError, match="reason"):
        approvals.gold_version_break_glass_publish(actor=erin, gold_version=draft, reason="  ")
    mark = last_id()
    published = approvals.gold_version_break_glass_publish(actor=erin, gold_version=draft,
                                                           reason="CVE-2026-1234 fix needed tonight")
    assert published.status == "published"
    assert events_since(mark) == ["gold_version.publish"]
    event = AuditEvent.objects.get(id=last_id())
    assert event.changes["break_glass"] == [None, True]
    assert PublishRequest.objects.get(gold_version=draft).break_glass


def test_a_promotion_is_a_request_and_builds_follow_the_channel(alice, frank, azure_emulator):
    first = factories.make_gold_version(actor=alice)
    request = approvals.promotion_request_create(actor=alice, gold_version=first, channel="production")
    with pytest.raises(services.ServiceError, match="no version in the channel"):
        approvals.build_request_on_channel(actor=alice, gold_image=first.gold_image, channel="production")
    mark = last_id()
    approvals.publish_request_approve(actor=frank, request=request)
    assert events_since(mark) == ["channel.promote"]
    assert Channel.objects.get(gold_image=first.gold_image, name="production").gold_version == first

    build = approvals.build_request_on_channel(actor=alice, gold_image=first.gold_image, channel="production")
    assert (build.channel, build.gold_version) == ("production", first)
    assert AuditEvent.objects.filter(action="build.request").last().changes["channel"] == [None, "production"]


def test_the_queue_shows_what_each_person_may_decide(alice, frank, bob, grace, carol, draft, layer_draft,
                                                     azure_emulator):
    gold_request = approvals.publish_request_create(actor=alice, target=draft)
    layer_request = approvals.publish_request_create(actor=bob, target=layer_draft)
    assert set(approvals.pending_for(frank)) == {gold_request, layer_request}
    assert set(approvals.pending_for(alice)) == {layer_request}
    assert set(approvals.pending_for(grace)) == {layer_request}
    assert set(approvals.pending_for(bob)) == set()
    assert set(approvals.pending_for(carol)) == set()
    assert GoldImageVersion.objects.filter(status="draft").count() == 1
    assert not Build.objects.exists()
