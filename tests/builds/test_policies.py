"""policy_update: versions, audit, refusals; policy_rules: which policy applies."""

import pytest

from builds import policies, preflight
from builds.models import Policy
from builds.services import ServiceError
from builds.validation import PolicyRules
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_each_change_is_a_new_audited_version(alice):
    first = policies.policy_update(actor=alice, rules={"require_checksums": True}, comment="checksums please")
    second = policies.policy_update(actor=alice, rules={"require_checksums": True, "allowed_regions": ["eastus"]})
    assert (first.version, second.version) == (1, 2)
    assert preflight.policy_rules() == PolicyRules(require_checksums=True, allowed_regions=("eastus",))
    events = list(AuditEvent.objects.filter(action="policy.update").order_by("id"))
    assert len(events) == 2 and events[0].actor_name == "alice"
    assert events[0].changes["require_checksums"] == [None, True]
    assert events[0].changes["comment"] == [None, "checksums please"]
    assert events[1].changes == {"allowed_regions": [[], ["eastus"]], "version": [1, 2]}


def test_saving_the_same_rules_changes_nothing(alice):
    first = policies.policy_update(actor=alice, rules={"max_build_timeout": 120})
    again = policies.policy_update(actor=alice, rules={"max_build_timeout": 120, "allowed_hosts": []})
    assert again.pk == first.pk
    assert AuditEvent.objects.filter(action="policy.update").count() == 1


def test_bad_rules_are_refused_with_their_names(alice):
    with pytest.raises(ServiceError) as caught:
        policies.policy_update(actor=alice, rules={"allowed_hosts": ["http://x"], "max_build_timeout": -1})
    assert {p.path for p in caught.value.problems} == {"allowed_hosts[0]", "max_build_timeout"}
    assert not Policy.objects.exists()
    assert not AuditEvent.objects.filter(action="policy.update").exists()


def test_without_a_saved_policy_the_defaults_apply():
    assert preflight.policy_rules() == PolicyRules()
    assert preflight.policy_rules(PolicyRules(require_checksums=True)).require_checksums
    with pytest.raises(preflight.UnknownPolicy):
        preflight.policy_rules("nope")


def test_named_policies_are_versioned_separately(alice):
    policies.policy_update(actor=alice, rules={"require_checksums": True})
    policies.policy_update(actor=alice, name="strict", rules={"departments_may_run_elevated": False})
    assert policies.policy_names() == ["default", "strict"]
    assert not preflight.policy_rules("strict").require_checksums
    assert preflight.policy_rules(Policy.objects.get(name="default")).require_checksums
