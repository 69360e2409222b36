"""The build network a department layer chooses: compose.vm_profile, validation.check_layer_network
and the layer list's network conflicts. Pure: plain objects stand in for the rows."""

from types import SimpleNamespace

import pytest

from builds import compose, validation
from builds.validation import PolicyRules

VNET = "/subscriptions/s1/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/corp"
PRIVATE = f"{VNET}/subnets/builds"
OTHER = f"{VNET}/subnets/other"
ACI = f"{VNET}/subnets/aci"


def gold(vm_profile=None):
    return SimpleNamespace(vm_profile=vm_profile or {})


def layer(name, network=None, layer_id=None):
    return SimpleNamespace(network=network or {}, layer=name, layer_id=layer_id or name)


@pytest.mark.parametrize("gold_profile, networks, wanted", [
    ({"vmSize": "Standard_D2ds_v5"}, [], {"vmSize": "Standard_D2ds_v5"}),
    ({"vmSize": "Standard_D2ds_v5"}, [{"subnetId": PRIVATE}],
     {"vmSize": "Standard_D2ds_v5", "vnetConfig": {"subnetId": PRIVATE}}),
    ({"vnetConfig": {"subnetId": OTHER, "containerInstanceSubnetId": ACI}}, [{"subnetId": PRIVATE}],
     {"vnetConfig": {"subnetId": PRIVATE, "containerInstanceSubnetId": ACI}}),
    ({"vnetConfig": {"subnetId": OTHER}}, [{"proxyVmSize": "Standard_A2_v2"}],
     {"vnetConfig": {"subnetId": OTHER, "proxyVmSize": "Standard_A2_v2"}}),
    ({}, [{"subnetId": PRIVATE}, {}], {"vnetConfig": {"subnetId": PRIVATE}}),
    ({}, [{"subnetId": ""}], {}),
    ({}, [{"subnetId": PRIVATE, "vmSize": "Standard_X"}], {"vnetConfig": {"subnetId": PRIVATE}}),
], ids=["no-layer-network", "layer-subnet", "layer-replaces-gold-subnet", "layer-proxy-only", "second-layer-silent",
        "empty-value", "other-keys-ignored"])
def test_the_composed_vm_profile_takes_the_layers_network(gold_profile, networks, wanted):
    layers = [layer(f"l{i}", network) for i, network in enumerate(networks)]
    assert compose.vm_profile(gold(gold_profile), layers) == wanted
    assert gold(gold_profile).vm_profile == gold_profile  # never modified


@pytest.mark.parametrize("network, policy, alone, wanted", [
    ({}, PolicyRules(layers_may_set_network=False), True, []),
    ({"subnetId": PRIVATE}, PolicyRules(), True, []),
    ({"subnetId": PRIVATE}, PolicyRules(layers_may_set_network=False), False,
     [("policy.layer-network", "network.subnetId")]),
    ({"proxyVmSize": "Standard_A2_v2"}, PolicyRules(layers_may_set_network=False), False,
     [("policy.layer-network", "network.proxyVmSize")]),
    ({"subnetId": "corp/builds"}, PolicyRules(), True, [("schema.subnet-id", "network.subnetId")]),
    ({"subnetId": "corp/builds"}, PolicyRules(), False, []),
    ({"subnetId": PRIVATE}, PolicyRules(allowed_subnets=(OTHER,)), True, [("policy.subnet", "network.subnetId")]),
    ({"subnetId": PRIVATE}, PolicyRules(allowed_subnets=(VNET,)), True, []),
    ({"subnetId": PRIVATE}, PolicyRules(network="public"), True, [("policy.network", "network.subnetId")]),
    ({"subnetId": PRIVATE}, PolicyRules(network="private"), True, []),
    ({"subnetId": PRIVATE, "proxyVmSize": "Standard_D4_v5"}, PolicyRules(allowed_proxy_vm_sizes=("Standard_A2_v2",)),
     True, [("policy.proxy-vm-size", "network.proxyVmSize")]),
    ({"proxyVmSize": "big"}, PolicyRules(), True, [("layer.network", "network.proxyVmSize")]),
    ({"vmSize": "Standard_D2ds_v5"}, PolicyRules(), False, [("layer.network", "network.vmSize")]),
    ("subnet", PolicyRules(), False, [("layer.network", "network")]),
], ids=["nothing-chosen", "allowed", "policy-forbids", "policy-forbids-proxy", "bad-id", "bad-id-left-to-body",
        "subnet-not-allowed", "vnet-allows-subnet", "public-only", "private-ok", "proxy-not-allowed", "bad-proxy",
        "unknown-key", "not-an-object"])
def test_a_layer_network_follows_the_policy(network, policy, alone, wanted):
    problems = validation.check_layer_network(network, policy, alone=alone)
    assert [(p.rule, p.path) for p in problems] == wanted


def test_layer_network_paths_carry_the_build_prefix():
    problems = validation.check_layer_network({"subnetId": PRIVATE}, PolicyRules(layers_may_set_network=False),
                                              prefix="layers[1]")
    assert [p.path for p in problems] == ["layers[1].network.subnetId"]


@pytest.mark.parametrize("networks, wanted", [
    ([{"subnetId": PRIVATE}, {"subnetId": PRIVATE.upper()}], []),
    ([{"subnetId": PRIVATE}, {}], []),
    ([{"subnetId": PRIVATE}, {"subnetId": OTHER}], [("layer.network-conflict", "layers[1].network.subnetId")]),
    ([{"proxyVmSize": "Standard_A2_v2"}, {"subnetId": OTHER, "proxyVmSize": "Standard_A1_v2"}],
     [("layer.network-conflict", "layers[1].network.proxyVmSize")]),
], ids=["same-subnet", "one-chooses", "two-subnets", "two-proxy-sizes"])
def test_the_layers_of_a_build_agree_on_one_network(networks, wanted):
    layers = [layer(f"l{i}", network) for i, network in enumerate(networks)]
    assert [(p.rule, p.path) for p in validation.check_layer_list(layers)] == wanted


@pytest.mark.parametrize("body_vnet, wanted", [
    ({"subnetId": PRIVATE}, []),
    ({"subnetId": OTHER}, ["layer.vm-profile-changed"]),
    (None, ["layer.vm-profile-changed"]),
], ids=["as-composed", "another-subnet", "network-dropped"])
def test_a_composed_body_keeps_the_network_the_layers_chose(body_vnet, wanted):
    gold_version = SimpleNamespace(vm_profile={"vmSize": "Standard_D2ds_v5"}, customize_before=[], customize_after=[])
    layers = [layer("web/alpha", {"subnetId": PRIVATE})]
    expected = {"properties": {"vmProfile": compose.vm_profile(gold_version, layers)}}
    profile = {"vmSize": "Standard_D2ds_v5", **({"vnetConfig": body_vnet} if body_vnet else {})}
    problems = validation.check_composition({"properties": {"vmProfile": profile}}, gold_version, layers,
                                            expected=expected)
    assert [p.rule for p in problems] == wanted
