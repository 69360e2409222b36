"""The enterprise journey at service level (tests/browser/test_journey_enterprise.py is the
browser's, with the subnet chosen on the layer form): a
department editor requests a build of a gold image that builds in a private subnet; preflight
refuses it with the missing role and the exact command that grants it; the role is granted
through the emulator's control API; the build request is accepted and the build runs to
success through a real RQ worker, with Image Builder enforcing permissions."""

from __future__ import annotations

import pytest

from builds import services
from builds.models import Build
from builds.services import ServiceError
from tests import factories
from tests.support.emulator import SUBSCRIPTION_ID
from tests.support.workers import enforce_without_network_role, grant, run_sweeps

SUB = f"/subscriptions/{SUBSCRIPTION_ID}"
VNET = f"{SUB}/resourceGroups/goldsmith-network/providers/Microsoft.Network/virtualNetworks/build-vnet"
SUBNET = f"{VNET}/subnets/private-builds"


@pytest.fixture
def enforced(azure_emulator):
    """Enforcement on; the template identity holds what it needs except on the network."""
    return enforce_without_network_role(azure_emulator)


def test_a_missing_network_role_is_refused_with_its_fix_then_the_build_succeeds(enforced, azure_emulator, alice,
                                                                                  bob, web, rq_worker):
    gold = factories.make_gold_version(actor=alice, vm_profile={"vmSize": "Standard_D2ds_v5",
                                                                "vnetConfig": {"subnetId": SUBNET}})
    with pytest.raises(ServiceError) as refused:
        services.build_request(actor=bob, gold_version=gold, department=web)
    [problem] = [p for p in refused.value.problems if p.rule == "permission.missing"]
    assert problem.path == "properties.vmProfile.vnetConfig.subnetId"
    assert problem.message.endswith(
        f'az role assignment create --assignee {enforced} --role "Network Contributor" --scope {VNET}')
    assert not Build.objects.exists()

    grant(azure_emulator, enforced, "Network Contributor", VNET)

    build = services.build_request(actor=bob, gold_version=gold, department=web)
    run_sweeps(lambda: Build.objects.get(pk=build.pk).is_terminal, timeout=120)
    build.refresh_from_db()
    assert build.state == Build.State.SUCCEEDED, (build.error_code, build.error_message, rq_worker.log()[-2000:])
    assert build.template["properties"]["vmProfile"]["vnetConfig"]["subnetId"] == SUBNET
