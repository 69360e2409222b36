"""The gold version wizard, browser-free: each step validates on the server and keeps its state on the draft."""

import pytest
from django.urls import reverse

from builds import approvals, policies
from builds.models import GoldImage, GoldImageVersion, PublishRequest
from portal.models import AuditEvent
from tests import factories
from tests.support.aib import GEN1_DEFINITION, GEN2_DEFINITION

pytestmark = pytest.mark.django_db


def step_url(step, slug="ubuntu", version="1.0.0"):
    return reverse("builds:wizard-step", args=[slug, version, step])


def start(client):
    response = client.post(reverse("builds:wizard-start"), {"slug": "ubuntu", "name": "Ubuntu", "os_type": "Linux",
                                                            "version": "1.0.0"})
    assert response.status_code == 302 and response.url == step_url("source")
    return GoldImageVersion.objects.get(gold_image__slug="ubuntu")


JAMMY_GEN2 = {"location": "eastus", "type": "PlatformImage", "publisher": "Canonical",
              "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2", "version": "latest", "action": "save"}


def walk_to(client, step):
    """Complete every step before `step` with good answers."""
    client.post(step_url("source"), JAMMY_GEN2)
    if step == "security":
        return
    client.post(step_url("security"), {"security_type": "TrustedLaunch", "hyper_v_generation": "V2", "action": "save"})
    if step == "customize":
        return
    client.post(step_url("customize"), {"op": "save", "list": "customize_before", "type": "Shell", "name": "update",
                                        "inline": "sudo apt-get update\nsudo apt-get -y upgrade"})
    client.post(step_url("customize"), {"op": "next"})
    if step == "validate":
        return
    client.post(step_url("validate"), {"op": "next"})
    if step == "distribute":
        return
    client.post(step_url("distribute"), {"op": "save", "target_type": "SharedImage", "runOutputName": "gallery",
                                         "galleryImageId": GEN2_DEFINITION, "targetRegions-0-name": "eastus"})
    client.post(step_url("distribute"), {"op": "next"})
    if step == "buildvm":
        return
    response = client.post(step_url("buildvm"), {"vmSize": "Standard_D2ds_v5", "identity": factories.IDENTITY,
                                                 "tags": "owner=security"})
    assert response.status_code == 302, response.content.decode()[:3000]


def test_the_whole_wizard_publishes_a_checked_version(client, alice, frank, azure_emulator):
    client.force_login(alice)
    draft = start(client)
    assert draft.status == "draft" and draft.wizard_step == ""
    walk_to(client, "review")
    response = client.get(step_url("review"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Request publishing 1.0.0" in page and "22_04-lts-gen2" in page
    draft.refresh_from_db()
    assert draft.wizard_step == "buildvm"
    assert draft.source["sku"] == "22_04-lts-gen2" and draft.security_type == "TrustedLaunch"
    assert [s["name"] for s in draft.customize_before] == ["update"]
    assert draft.customize_before[0]["inline"] == ["sudo apt-get update", "sudo apt-get -y upgrade"]
    assert draft.distribute[0]["targetRegions"] == [{"name": "eastus"}]
    # Four eyes: the wizard's Publish makes a request; frank's approval publishes.
    response = client.post(reverse("builds:wizard-publish", args=["ubuntu", "1.0.0"]), {"reason": "first"})
    assert response.status_code == 302
    request = PublishRequest.objects.get(gold_version=draft)
    assert response.url == reverse("builds:approval-detail", args=[request.uuid])
    draft.refresh_from_db()
    assert draft.status == "draft"
    approvals.publish_request_approve(actor=frank, request=request)
    draft.refresh_from_db()
    assert draft.status == "published"
    assert AuditEvent.objects.filter(action="gold_version.publish", object_id=str(draft.uuid)).exists()


def test_the_source_step_refuses_a_trusted_launch_only_image(client, alice, azure_emulator):
    client.force_login(alice)
    draft = start(client)
    response = client.post(step_url("source"), {**JAMMY_GEN2, "publisher": "Contoso", "offer": "hardened-ubuntu",
                                                "sku": "22_04-tl-only"})
    assert response.status_code == 422
    assert "Image Builder cannot build from it" in response.content.decode()
    draft.refresh_from_db()
    assert draft.source == {} and draft.wizard_step == ""


def test_the_source_step_names_the_missing_version(client, alice, azure_emulator):
    client.force_login(alice)
    start(client)
    response = client.post(step_url("source"), {**JAMMY_GEN2, "version": "9.9.9"})
    assert response.status_code == 422
    page = response.content.decode()
    assert 'id="id_version-errors"' in page and "22.04.202411190" in page


def test_browsing_lists_the_catalog_without_javascript(client, alice, azure_emulator):
    client.force_login(alice)
    start(client)
    response = client.post(step_url("source"), {"location": "eastus", "type": "PlatformImage",
                                                "publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
                                                "action": "browse"})
    page = response.content.decode()
    assert response.status_code == 200 and '<option value="22_04-lts-gen2">' in page


def test_the_lookup_fragment_answers_htmx(client, alice, azure_emulator):
    client.force_login(alice)
    start(client)
    response = client.get(reverse("builds:wizard-lookup", args=["ubuntu", "1.0.0"]),
                          {"location": "eastus", "type": "PlatformImage", "publisher": "Canonical",
                           "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2", "version": "latest"},
                          headers={"HX-Request": "true"})
    page = response.content.decode()
    assert response.status_code == 200 and page.lstrip().startswith('<div id="source-catalog"')
    assert "TrustedLaunchSupported" in page and "22.04.202411190" in page


def test_the_source_sets_the_suggested_declaration(client, alice, azure_emulator):
    client.force_login(alice)
    draft = start(client)
    client.post(step_url("source"), {**JAMMY_GEN2, "sku": "22_04-lts"})
    draft.refresh_from_db()
    assert (draft.security_type, draft.hyper_v_generation) == ("Standard", "V1")


def test_the_security_step_checks_the_declaration_live(client, alice, azure_emulator):
    client.force_login(alice)
    draft = start(client)
    walk_to(client, "security")
    response = client.post(step_url("security"), {"security_type": "Standard", "hyper_v_generation": "V1",
                                                  "action": "check"}, headers={"HX-Request": "true"})
    page = response.content.decode()
    assert response.status_code == 200 and page.lstrip().startswith('<div id="wizard"')
    assert "Standard is declared, but the source is TrustedLaunchSupported" in page
    assert "Generation 1 is declared" in page
    draft.refresh_from_db()
    assert draft.security_type == "TrustedLaunch"  # a check never saves


def test_steps_cannot_be_skipped_but_can_be_revisited(client, alice, azure_emulator):
    client.force_login(alice)
    start(client)
    response = client.get(step_url("distribute"))
    assert response.status_code == 302 and response.url == step_url("source")
    walk_to(client, "customize")
    assert client.get(step_url("source")).status_code == 200
    assert client.get(step_url("customize")).status_code == 200
    assert client.get(reverse("builds:wizard-edit", args=["ubuntu", "1.0.0"])).url == step_url("customize")


def test_the_step_editor_adds_edits_reorders_and_removes(client, alice, azure_emulator):
    client.force_login(alice)
    draft = start(client)
    walk_to(client, "customize")
    url = step_url("customize")
    for name in ("a", "b", "c"):
        assert client.post(url, {"op": "save", "list": "customize_before", "type": "Shell", "name": name,
                                 "inline": f"echo {name}"}).status_code == 302
    client.post(url, {"op": "up", "list": "customize_before", "index": "2"})
    client.post(url, {"op": "save", "list": "customize_before", "index": "0", "type": "Shell", "name": "a",
                      "scriptUri": "https://files.example.com/a.sh", "sha256Checksum": "a" * 64})
    client.post(url, {"op": "remove", "list": "customize_before", "index": "2"})
    draft.refresh_from_db()
    assert draft.customize_before == [
        {"type": "Shell", "name": "a", "scriptUri": "https://files.example.com/a.sh", "sha256Checksum": "a" * 64},
        {"type": "Shell", "name": "c", "inline": ["echo c"]}]
    page = client.get(url, {"list": "customize_before", "edit": "0"}).content.decode()
    assert 'value="https://files.example.com/a.sh"' in page


@pytest.mark.parametrize("fields, field, text", [
    ({"scriptUri": "http://files.example.com/a.sh"}, "scriptUri", "https"),
    ({"inline": "echo ok\ncurl -H 'Authorization: Bearer abcdefghijklmnopqrstu'"}, "inline", "Line 2"),
    ({"scriptUri": "https://x.example.com/a.sh", "inline": "echo"}, "scriptUri", "not both"),
    ({"inline": "echo", "name": "update"}, "name", "already called"),
])
def test_the_step_editor_puts_each_refusal_next_to_its_field(client, alice, azure_emulator, fields, field, text):
    client.force_login(alice)
    draft = start(client)
    walk_to(client, "customize")
    client.post(step_url("customize"), {"op": "save", "list": "customize_after", "type": "Shell", "name": "update",
                                        "inline": "echo"})
    before = list(GoldImageVersion.objects.get(pk=draft.pk).customize_before)
    data = {"op": "save", "list": "customize_before", "type": "Shell", "name": "new", **fields}
    response = client.post(step_url("customize"), data)
    page = response.content.decode()
    assert response.status_code == 422
    assert f'id="id_{field}-errors"' in page and text in page
    assert GoldImageVersion.objects.get(pk=draft.pk).customize_before == before


def test_windows_only_steps_are_not_offered_for_linux(client, alice, azure_emulator):
    client.force_login(alice)
    start(client)
    walk_to(client, "customize")
    response = client.post(step_url("customize"), {"op": "save", "list": "customize_before", "type": "WindowsUpdate",
                                                   "name": "wu"})
    assert response.status_code == 422 and "Choose one of Shell, File" in response.content.decode()


def test_the_distribute_step_refuses_a_definition_of_the_other_generation(client, alice, azure_emulator):
    client.force_login(alice)
    draft = start(client)
    walk_to(client, "distribute")
    response = client.post(step_url("distribute"), {"op": "save", "target_type": "SharedImage", "runOutputName": "g1",
                                                    "galleryImageId": GEN1_DEFINITION})
    page = response.content.decode()
    assert response.status_code == 422 and 'id="id_galleryImageId-errors"' in page
    assert "Generation 2" in page
    draft.refresh_from_db()
    assert draft.distribute == []
    response = client.post(step_url("distribute"), {"op": "next"})
    assert response.status_code == 422 and "at least one distribution target" in response.content.decode()


GALLERY = {"op": "save", "target_type": "SharedImage", "runOutputName": "g1", "galleryImageId": GEN2_DEFINITION}


def test_the_distribute_step_saves_regions_versioning_and_data_disks(client, alice, azure_emulator):
    client.force_login(alice)
    draft = start(client)
    walk_to(client, "distribute")
    page = client.get(step_url("distribute"), {"add": "SharedImage"}).content.decode()
    assert 'name="targetRegions-0-name" value="eastus"' in page and '<option value="Premium_LRS">' in page
    response = client.post(step_url("distribute"), {
        **GALLERY, "targetRegions-0-name": "eastus", "targetRegions-0-replicaCount": "2",
        "targetRegions-0-storageAccountType": "Standard_ZRS", "targetRegions-1-name": "West Europe",
        "versioning": "Latest", "major": "1"})
    assert response.status_code == 302, response.content.decode()[-3000:]
    response = client.post(step_url("distribute"), {"op": "next", "additionalDataDisks": "64, 128"})
    assert response.status_code == 302, response.content.decode()[-3000:]
    draft.refresh_from_db()
    assert draft.distribute == [{
        "type": "SharedImage", "runOutputName": "g1", "galleryImageId": GEN2_DEFINITION,
        "targetRegions": [{"name": "eastus", "replicaCount": 2, "storageAccountType": "Standard_ZRS"},
                          {"name": "westeurope"}],
        "versioning": {"scheme": "Latest", "major": 1}}]
    assert draft.extra_properties == {"additionalDataDisks": [{"sizeGB": 64}, {"sizeGB": 128}]}
    assert draft.wizard_step == "distribute"
    page = client.get(step_url("distribute")).content.decode()
    assert 'value="64, 128"' in page and "eastus \u00d72 Standard_ZRS" in page


def test_region_rows_are_added_and_removed_without_saving(client, alice, azure_emulator):
    client.force_login(alice)
    draft = start(client)
    walk_to(client, "distribute")
    rows = {"targetRegions-0-name": "eastus", "targetRegions-0-replicaCount": "3",
            "targetRegions-1-name": "westeurope", "targetRegions-1-storageAccountType": "Premium_LRS"}
    response = client.post(step_url("distribute"), {**GALLERY, **rows, "op": "add-region"})
    page = response.content.decode()
    assert response.status_code == 200 and 'name="targetRegions-2-name"' in page
    assert 'name="targetRegions-3-name"' not in page and "errorlist" not in page
    response = client.post(step_url("distribute"), {**GALLERY, **rows, "op": "remove-region-0"})
    page = response.content.decode()
    assert 'name="targetRegions-0-name" value="westeurope"' in page and 'name="targetRegions-1-name"' not in page
    assert '<option value="Premium_LRS" selected>' in page
    draft.refresh_from_db()
    assert draft.distribute == []


def test_a_target_is_edited_in_place(client, alice, azure_emulator):
    client.force_login(alice)
    draft = start(client)
    walk_to(client, "buildvm")
    page = client.get(step_url("distribute"), {"edit": "0"}).content.decode()
    assert 'name="targetRegions-0-name" value="eastus"' in page and 'name="index" value="0"' in page
    response = client.post(step_url("distribute"), {**GALLERY, "index": "0", "runOutputName": "gallery",
                                                    "targetRegions-0-name": "eastus", "versioning": "Source"})
    assert response.status_code == 302, response.content.decode()[-3000:]
    draft.refresh_from_db()
    assert len(draft.distribute) == 1 and draft.distribute[0]["versioning"] == {"scheme": "Source"}


@pytest.mark.parametrize("fields, field", [
    ({"targetRegions-0-replicaCount": "0"}, "targetRegions-0-replicaCount"),
    ({"targetRegions-0-replicaCount": "101"}, "targetRegions-0-replicaCount"),
    ({"targetRegions-0-storageAccountType": "Premium_ZRS"}, "targetRegions-0-storageAccountType"),
    ({"targetRegions-1-name": "EastUS"}, "targetRegions-1-name"),  # schema.region-duplicate
    ({"targetRegions-1-replicaCount": "2"}, "targetRegions-1-name"),
    ({"versioning": "Latest", "major": "-2"}, "major"),
    ({"major": "3"}, "major"),
])
def test_the_distribute_step_puts_each_refusal_next_to_its_field(client, alice, azure_emulator, fields, field):
    client.force_login(alice)
    draft = start(client)
    walk_to(client, "distribute")
    response = client.post(step_url("distribute"), {**GALLERY, "targetRegions-0-name": "eastus", **fields})
    assert response.status_code == 422
    assert f'id="id_{field}-errors"' in response.content.decode()
    draft.refresh_from_db()
    assert draft.distribute == []


def test_the_distribute_step_shows_the_policy_next_to_each_field(client, alice, azure_emulator):
    client.force_login(alice)
    draft = start(client)
    walk_to(client, "distribute")
    policies.policy_update(actor=alice, rules={"max_replica_count": 2, "allowed_storage_account_types": ["Standard_ZRS"],
                                               "gallery_versioning": "Source", "max_data_disk_size_gb": 100})
    response = client.post(step_url("distribute"), {**GALLERY, "targetRegions-0-name": "eastus",
                                                    "targetRegions-0-replicaCount": "3",
                                                    "targetRegions-0-storageAccountType": "Standard_LRS",
                                                    "versioning": "Latest"})
    page = response.content.decode()
    assert response.status_code == 422
    for field in ("targetRegions-0-replicaCount", "targetRegions-0-storageAccountType", "versioning"):
        assert f'id="id_{field}-errors"' in page, field
    assert "at most 2 replicas" in page and "does not allow Standard_LRS" in page
    # Left empty, the storage type (the one allowed) and the scheme are filled by the policy.
    response = client.post(step_url("distribute"), {**GALLERY, "targetRegions-0-name": "eastus"})
    assert response.status_code == 302, response.content.decode()[-3000:]
    response = client.post(step_url("distribute"), {"op": "next", "additionalDataDisks": "64, 128"})
    page = response.content.decode()
    assert response.status_code == 422 and 'id="id_additionalDataDisks-errors"' in page and "at most 100 GB" in page
    policies.policy_update(actor=alice, rules={"additional_data_disks": False})
    response = client.post(step_url("distribute"), {"op": "next", "additionalDataDisks": "64"})
    assert response.status_code == 422 and "does not allow additional data disks" in response.content.decode()
    response = client.post(step_url("distribute"), {"op": "next", "additionalDataDisks": "lots"})
    assert response.status_code == 422 and "not a size in GB" in response.content.decode()
    draft.refresh_from_db()
    assert draft.extra_properties == {} and draft.wizard_step == "validate"


def test_the_build_vm_step_refuses_a_size_that_cannot_host_gen2(client, alice, azure_emulator):
    client.force_login(alice)
    start(client)
    walk_to(client, "buildvm")
    response = client.post(step_url("buildvm"), {"vmSize": "Standard_A2_v2", "identity": factories.IDENTITY,
                                                 "osDiskSizeGB": "10"})
    page = response.content.decode()
    assert response.status_code == 422
    assert 'id="id_vmSize-errors"' in page and 'id="id_osDiskSizeGB-errors"' in page


def test_htmx_step_swaps_get_the_fragment(client, alice, azure_emulator):
    client.force_login(alice)
    start(client)
    response = client.get(step_url("source"), headers={"HX-Request": "true"})
    assert response.content.decode().lstrip().startswith('<div id="wizard"')
    assert "HX-Request" in response["Vary"]
    full = client.get(step_url("source")).content.decode()
    assert "<html" in full and 'id="wizard"' in full


@pytest.mark.parametrize("persona, status", [("bob", 403), ("dave", 403), ("erin", 403)])
def test_only_the_security_team_uses_the_wizard(client, request, persona, status):
    user = request.getfixturevalue(persona)
    factories.make_gold_version(factories.make_gold_image("ubuntu"), publish=False)
    client.force_login(user)
    assert client.get(reverse("builds:wizard-start")).status_code == 403
    # Editors do not even learn that a draft exists.
    expected = 404 if persona == "bob" else status
    assert client.get(step_url("source")).status_code == expected


def test_a_published_version_is_not_edited(client, alice):
    client.force_login(alice)
    factories.make_gold_version(factories.make_gold_image("ubuntu"))
    response = client.get(step_url("source"))
    assert response.status_code == 302 and response.url == reverse("builds:gold-version", args=["ubuntu", "1.0.0"])


def test_a_new_version_copies_another_and_starts_at_the_source(client, alice):
    client.force_login(alice)
    published = factories.make_gold_version(factories.make_gold_image("ubuntu"))
    response = client.post(reverse("builds:wizard-new-version", args=["ubuntu"]),
                           {"version": "1.1.0", "based_on": "1.0.0"})
    assert response.status_code == 302 and response.url == step_url("source", version="1.1.0")
    draft = GoldImageVersion.objects.get(version="1.1.0")
    assert draft.source == published.source and draft.wizard_step == "buildvm"  # every step open
    response = client.post(reverse("builds:wizard-new-version", args=["ubuntu"]), {"version": "1.1.0"})
    assert response.status_code == 422 and "already exists" in response.content.decode()


def test_a_new_version_below_the_newest_is_created_with_a_warning(client, alice):
    client.force_login(alice)
    factories.make_gold_version(factories.make_gold_image("ubuntu"))
    response = client.post(reverse("builds:wizard-new-version", args=["ubuntu"]), {"version": "0.9.0"}, follow=True)
    assert response.redirect_chain[0][0] == step_url("source", version="0.9.0")
    assert GoldImageVersion.objects.get(version="0.9.0").is_draft
    assert "0.9.0 is below 1.0.0, the newest version of ubuntu" in response.content.decode()


def test_a_taken_slug_is_refused_on_its_field(client, alice):
    client.force_login(alice)
    factories.make_gold_image("ubuntu")
    response = client.post(reverse("builds:wizard-start"), {"slug": "ubuntu", "name": "U", "os_type": "Linux",
                                                            "version": "1.0.0"})
    assert response.status_code == 422 and 'id="id_slug-errors"' in response.content.decode()
    assert GoldImage.objects.count() == 1


SUBNET = (f"/subscriptions/{factories.IDENTITY.split('/')[2]}/resourceGroups/goldsmith-network/providers/"
          "Microsoft.Network/virtualNetworks/build-vnet/subnets/private-builds")


def test_the_build_vm_step_offers_the_regions_sizes_with_vcpus_and_memory(client, alice, azure_emulator):
    client.force_login(alice)
    start(client)
    walk_to(client, "buildvm")
    page = client.get(step_url("buildvm")).content.decode()
    assert '<option value="Standard_D2ds_v5">Standard_D2ds_v5: 2 vCPU, 8 GB' in page
    assert '<option value="other">Another size (type it below)</option>' in page
    response = client.post(step_url("buildvm"), {"vmSize": "other", "vmSizeOther": "",
                                                 "identity": factories.IDENTITY})
    assert response.status_code == 422 and 'id="id_vmSizeOther-errors"' in response.content.decode()


def test_the_build_vm_step_saves_the_enterprise_settings(client, alice, azure_emulator):
    client.force_login(alice)
    draft = start(client)
    walk_to(client, "buildvm")
    response = client.post(step_url("buildvm"), {
        "vmSize": "Standard_D2ds_v5", "identity": factories.IDENTITY, "subnetId": SUBNET,
        "proxyVmSize": "Standard_A2_v2", "staging": "goldsmith", "managedResourceTags": "costCenter=42",
        "onCustomizerError": "abort", "onValidationError": "cleanup", "vmBoot": "Enabled"})
    assert response.status_code == 302, response.content.decode()[-3000:]
    draft.refresh_from_db()
    assert draft.vm_profile["vnetConfig"] == {"subnetId": SUBNET, "proxyVmSize": "Standard_A2_v2"}
    assert draft.staging_resource_group == "goldsmith-named"  # named per build, compose.staging_group
    assert draft.managed_resource_tags == {"costCenter": "42"}
    assert draft.error_handling == {"onCustomizerError": "abort", "onValidationError": "cleanup"}
    assert draft.optimize == {"vmBoot": {"state": "Enabled"}}
    page = client.get(step_url("buildvm")).content.decode()
    assert 'value="goldsmith" checked' in page or 'value="goldsmith" id="id_staging_1" checked' in page
    assert '<option value="abort" selected>' in page


def test_the_build_vm_step_puts_policy_problems_next_to_their_fields(client, alice, azure_emulator):
    client.force_login(alice)
    start(client)
    walk_to(client, "buildvm")
    policies.policy_update(actor=alice, rules={"on_customizer_error": "abort", "vm_boot_optimization": "Enabled",
                                               "required_managed_resource_tags": ["costCenter"],
                                               "staging_resource_group": "named"})
    response = client.post(step_url("buildvm"), {"vmSize": "Standard_D2ds_v5", "identity": factories.IDENTITY,
                                                 "staging": "none"})
    page = response.content.decode()
    assert response.status_code == 422
    assert 'id="id_managedResourceTags-errors"' in page  # "costCenter" with any value: nothing to fill
    # Left empty, the pinned settings are filled by the policy (compose.apply_pins), not refused.
    for field in ("onCustomizerError", "vmBoot", "stagingResourceGroup"):
        assert f'id="id_{field}-errors"' not in page, field
    response = client.post(step_url("buildvm"), {"vmSize": "Standard_D2ds_v5", "identity": factories.IDENTITY,
                                                 "staging": "own"})
    assert 'id="id_stagingResourceGroup-errors"' in response.content.decode()


def test_the_goldsmith_named_staging_group_keeps_the_policys_prefix(client, alice, azure_emulator):
    client.force_login(alice)
    draft = start(client)
    walk_to(client, "buildvm")
    policies.policy_update(actor=alice, rules={"staging_resource_group": "named",
                                               "staging_resource_group_prefix": "corp-stg-"})
    page = client.get(step_url("buildvm")).content.decode()
    assert "/resourceGroups/corp-stg-ubuntu-&lt;build-id&gt;" in page
    response = client.post(step_url("buildvm"), {"vmSize": "Standard_D2ds_v5", "identity": factories.IDENTITY,
                                                 "staging": "goldsmith"})
    assert response.status_code == 302, response.content.decode()[-3000:]
    draft.refresh_from_db()
    assert draft.staging_resource_group == "goldsmith-named:corp-stg-"


def test_the_progress_list_shows_done_current_and_remaining_steps(client, alice, azure_emulator):
    client.force_login(alice)
    start(client)
    walk_to(client, "customize")
    page = client.get(step_url("customize")).content.decode()
    assert page.count('class="step-done"') == 2 and page.count('class="step-todo"') == 4
    assert '<li class="step-current" data-step="customize">' in page and 'aria-current="step">Customize' in page
    assert f'<a href="{step_url("security")}">Security</a>' in page
    assert f'href="{step_url("validate")}"' not in page  # later ones open once this one is done
    assert "1. Source" not in page  # the list's own numbers count (no "1. 1. Source")
    # A deep link past the next step goes back to where the draft is.
    response = client.get(step_url("review"))
    assert response.status_code == 302 and response.url == step_url("customize")


def test_a_copied_version_opens_any_step_at_once(client, alice, azure_emulator):
    client.force_login(alice)
    factories.make_gold_version(factories.make_gold_image("ubuntu"))
    client.post(reverse("builds:wizard-new-version", args=["ubuntu"]), {"version": "1.1.0", "based_on": "1.0.0"})
    response = client.get(step_url("review", version="1.1.0"))  # a deep link, no walking
    assert response.status_code == 200
    page = response.content.decode()
    for step in ("source", "security", "customize", "validate", "distribute", "buildvm"):
        assert f'href="{step_url(step, version="1.1.0")}"' in page, step
    assert client.get(step_url("buildvm", version="1.1.0")).status_code == 200


def test_publishing_from_a_boosted_wizard_loads_the_request_page_whole(client, alice, azure_emulator):
    client.force_login(alice)
    start(client)
    walk_to(client, "review")
    response = client.post(step_url("review"), {"reason": "first"}, headers={"HX-Request": "true",
                                                                               "HX-Boosted": "true"})
    request = PublishRequest.objects.get()
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("builds:approval-detail", args=[request.uuid])


def test_the_build_vm_step_reports_every_problem_in_one_submit(client, alice, azure_emulator):
    client.force_login(alice)
    start(client)
    walk_to(client, "buildvm")
    response = client.post(step_url("buildvm"), {"vmSize": "Standard_A2_v2", "identity": factories.IDENTITY,
                                                 "osDiskSizeGB": "10", "buildTimeoutInMinutes": "2000"})
    page = response.content.decode()
    assert response.status_code == 422
    for field in ("buildTimeoutInMinutes", "vmSize", "osDiskSizeGB"):
        assert f'id="id_{field}-errors"' in page, field


def test_a_check_that_could_not_be_made_says_not_checked_rather_than_passed():
    from django.template.loader import render_to_string

    from builds import validation
    from builds.schema import Problem
    unknown = Problem("vm.size-unknown", "properties.vmProfile.vmSize",
                      "Goldsmith does not know whether Standard_Zz9_v9 can host a Generation 2 x64 image.", "warning")
    checks = validation.summarize([unknown], [validation.group_of(unknown)])
    result = next(check for check in checks if check.group == validation.group_of(unknown))
    assert result.passed and result.not_checked
    page = render_to_string("builds/wizard/_checks.html", {"checks": [result]})
    assert '<li class="not-checked">' in page and "not checked</span>" in page and ">passed<" not in page
    assert "Standard_Zz9_v9" in page
