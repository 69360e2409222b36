"""Rollouts the policy asks for: publishing or promoting a gold version plans (or starts) the
rollout of its dependent layers in the same transaction; by hand stays the default."""

from __future__ import annotations

import pytest

from builds import approvals, policies, rollouts, services
from builds.models import Rollout, RolloutItem
from portal.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def gold(alice, web, azure_emulator):  # publish requests look the source image up
    """ubuntu 1.0.0 published, 1.1.0 a draft; web's api layer accepts ^1."""
    image = factories.make_gold_image("ubuntu", actor=alice)
    factories.make_gold_version(image, "1.0.0", actor=alice)
    factories.make_layer_version(factories.make_layer(web, image, "api"), "1.0.0", accepts="^1")
    return image


def publish_with_four_eyes(alice, frank, gold_version):
    request = approvals.publish_request_create(actor=alice, target=gold_version, comment="monthly patch")
    return approvals.publish_request_approve(actor=frank, request=request)


def test_by_default_publishing_plans_no_rollout(gold, alice, frank):
    draft = factories.make_gold_version(gold, "1.1.0", actor=alice, publish=False)
    publish_with_four_eyes(alice, frank, draft)
    assert not Rollout.objects.exists()


def test_plan_on_publish_writes_a_planned_rollout_by_the_approver(gold, alice, frank):
    policies.policy_update(actor=alice, rules={"rollout_on_publish": "plan"})
    draft = factories.make_gold_version(gold, "1.1.0", actor=alice, publish=False)
    publish_with_four_eyes(alice, frank, draft)

    rollout = Rollout.objects.get()
    assert (rollout.gold_version_id, rollout.state, rollout.created_by) == (draft.pk, Rollout.State.PLANNED, frank)
    assert [str(item.layer) for item in rollout.items.filter(kind=RolloutItem.Kind.BUILD)] == ["web/api"]
    event = AuditEvent.objects.get(action="rollout.create")
    assert event.changes["trigger"] == [None, "policy: published"]
    assert event.actor == frank


def test_start_on_publish_starts_it_and_a_refused_release_plans_nothing(gold, alice, frank):
    policies.policy_update(actor=alice, rules={"rollout_on_publish": "start"})
    draft = factories.make_gold_version(gold, "1.1.0", actor=alice, publish=False)
    with pytest.raises(approvals.NotAllowed):  # four eyes: alice may not approve her own request
        approvals.publish_request_approve(actor=alice, request=approvals.publish_request_create(
            actor=alice, target=draft))
    assert not Rollout.objects.exists()

    approvals.publish_request_approve(actor=frank, request=draft.publish_requests.get())
    rollout = Rollout.objects.get()
    assert rollout.state == Rollout.State.RUNNING and rollout.started_at is not None
    assert list(AuditEvent.objects.filter(action__startswith="rollout.").values_list("action", flat=True)
                .order_by("id")) == ["rollout.create", "rollout.start"]


def test_a_release_by_someone_outside_the_security_team_is_rolled_out_by_the_policy(gold, alice):
    policies.policy_update(actor=alice, rules={"rollout_on_publish": "plan"})
    draft = factories.make_gold_version(gold, "1.1.0", actor=alice, publish=False)
    services.gold_version_publish(actor="system", gold_version=draft, lookups=False)
    rollout = Rollout.objects.get()
    assert rollout.created_by.get_username() == "goldsmith-system"  # nobody in particular
    assert AuditEvent.objects.get(action="rollout.create").actor_name == rollouts.POLICY_ACTOR


def test_a_version_without_dependent_layers_gets_no_rollout(alice, frank, azure_emulator):
    policies.policy_update(actor=alice, rules={"rollout_on_publish": "start"})
    image = factories.make_gold_image("debian", actor=alice)
    publish_with_four_eyes(alice, frank, factories.make_gold_version(image, "1.0.0", actor=alice, publish=False))
    assert not Rollout.objects.exists()


def test_promotion_plans_a_rollout_once_and_a_rollouts_own_promotion_plans_none(gold, alice, frank):
    policies.policy_update(actor=alice, rules={"rollout_on_promote": "plan"})
    version = factories.make_gold_version(gold, "1.1.0", actor=alice)  # published: nothing (manual)
    assert not Rollout.objects.exists()

    request = approvals.promotion_request_create(actor=alice, gold_version=version, channel="canary")
    approvals.publish_request_approve(actor=frank, request=request)
    rollout = Rollout.objects.get()
    assert AuditEvent.objects.get(action="rollout.create").changes["trigger"] == [None, "policy: promoted to canary"]

    request = approvals.promotion_request_create(actor=alice, gold_version=version, channel="production")
    approvals.publish_request_approve(actor=frank, request=request)
    assert list(Rollout.objects.all()) == [rollout]  # it has one already


def test_policy_page_offers_and_saves_the_rollout_rules(client, alice):
    client.force_login(alice)
    page = client.get("/policy/")
    assert "When a gold version is published" in page.content.decode()
    form = page.context["form"]
    data = {name: value for name, value in form.initial.items() if value not in (None, False)}
    data.update({"rollout_on_publish": "start", "rollout_on_promote": "plan", "comment": "roll out monthly"})
    answer = client.post("/policy/", data)
    assert answer.status_code in (200, 302), answer.content.decode()[:2000]
    rules = policies.policy_history()[0].rules
    assert (rules["rollout_on_publish"], rules["rollout_on_promote"]) == ("start", "plan")
    assert "a rollout of its dependent layers is planned and started" in client.get("/policy/").content.decode()


def test_the_api_refuses_an_unknown_rollout_rule(alice):
    with pytest.raises(services.ServiceError) as refused:
        policies.policy_update(actor=alice, rules={"rollout_on_publish": "always"})
    assert [problem.path for problem in refused.value.problems] == ["rollout_on_publish"]
