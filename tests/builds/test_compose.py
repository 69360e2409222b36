"""Composition: order, provenance, determinism, and what the real SDK makes of the result."""

import uuid

import pytest
from azure.mgmt.imagebuilder import models as sdk_models
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builds import azure, compose, schema
from builds.compose import BuildContext
from builds.models import GoldImage, GoldImageVersion, Layer, LayerVersion
from portal.models import Department
from tests import factories


def step_names(body):
    return [step["name"] for step in body["properties"].get("customize", [])]


@pytest.fixture
def gold(db):
    return factories.make_gold_version(
        customize_before=[{"type": "Shell", "name": "b1", "inline": ["echo b1"]},
                          {"type": "Shell", "name": "b2", "inline": ["echo b2"]}],
        customize_after=[{"type": "Shell", "name": "a1", "inline": ["echo a1"]}],
        validators_before=[{"type": "Shell", "name": "vb", "inline": ["true"]}],
        validators_after=[{"type": "Shell", "name": "va", "inline": ["true"]}],
        tags={"owner": "security", "department": "baseline"},
    )


@pytest.fixture
def layers(gold, web):
    layer_a = factories.make_layer(web, gold.gold_image, "alpha")
    layer_b = factories.make_layer(web, gold.gold_image, "beta")
    return [
        factories.make_layer_version(layer_a, customize=[{"type": "Shell", "name": "l1", "inline": ["echo l1"]}],
                                     validators=[{"type": "Shell", "name": "vl", "inline": ["true"]}],
                                     tags={"department": "web", "team": "alpha"}),
        factories.make_layer_version(layer_b, customize=[{"type": "Shell", "name": "l2", "inline": ["echo l2"]}]),
    ]


def test_it_puts_baseline_before_steps_first_then_layers_in_order_then_after_steps(gold, layers):
    body = compose.compose(gold, layers, BuildContext(location="eastus"))
    assert step_names(body) == ["b1", "b2", "l1", "l2", "a1"]
    assert [v["name"] for v in body["properties"]["validate"]["inVMValidations"]] == ["vb", "vl", "va"]


def test_it_stamps_provenance_on_the_template_and_every_distributor(gold, layers):
    build_id = uuid.uuid4()
    body = compose.compose(gold, layers, BuildContext(location="eastus", build_id=build_id, requester="bob"))
    expected = {"goldsmith.gold": f"{gold.gold_image.slug}@1.0.0",
                "goldsmith.layers": "web/alpha@1.0.0,web/beta@1.0.0",
                "goldsmith.build": str(build_id), "goldsmith.requester": "bob"}
    assert expected.items() <= body["tags"].items()
    for target in body["properties"]["distribute"]:
        assert expected.items() <= target["artifactTags"].items()


def test_it_lets_the_baseline_tags_win_over_a_layers(gold, layers):
    body = compose.compose(gold, layers, BuildContext(location="eastus"))
    assert body["tags"]["department"] == "baseline"
    assert body["tags"]["team"] == "alpha"


def test_effective_tags_name_the_source_of_each_tag_and_every_override(gold, layers, web):
    gamma = factories.make_layer_version(factories.make_layer(web, gold.gold_image, "gamma"),
                                         tags={"team": "gamma", "department": "baseline", "cost": "42"})
    effective, overridden = compose.effective_tags(gold, [*layers, gamma])
    slug = gold.gold_image.slug
    assert [(t.name, t.value, t.source) for t in effective] == [
        ("cost", "42", "web/gamma@1.0.0"), ("department", "baseline", f"{slug}@1.0.0"),
        ("owner", "security", f"{slug}@1.0.0"), ("team", "gamma", "web/gamma@1.0.0")]
    # gamma's department=baseline matches what applies: not an override.
    assert [(t.name, t.value, t.source, t.overridden_by, t.effective_value) for t in overridden] == [
        ("department", "web", "web/alpha@1.0.0", f"{slug}@1.0.0", "baseline"),
        ("team", "alpha", "web/alpha@1.0.0", "web/gamma@1.0.0", "gamma")]
    body = compose.compose(gold, [*layers, gamma], BuildContext(location="eastus"))
    assert compose.without_provenance(body)["tags"] == {t.name: t.value for t in effective}


def test_without_layers_nothing_is_overridden(gold):
    effective, overridden = compose.effective_tags(gold, [])
    assert {t.name: t.value for t in effective} == {"owner": "security", "department": "baseline"}
    assert overridden == []


def test_it_keeps_source_identity_vm_profile_and_distribution_from_the_gold_version(gold, layers):
    body = compose.compose(gold, layers, BuildContext(location="eastus"))
    assert body["properties"]["source"] == gold.source
    assert list(body["identity"]["userAssignedIdentities"]) == [gold.identity]
    assert body["properties"]["vmProfile"] == gold.vm_profile
    assert [t["runOutputName"] for t in body["properties"]["distribute"]] == ["gallery"]


def test_it_does_not_modify_its_inputs(gold, layers):
    before = (list(gold.distribute), [dict(t) for t in gold.distribute], list(layers[0].customize))
    compose.compose(gold, layers, BuildContext(location="eastus", build_id=uuid.uuid4()))
    assert before == (list(gold.distribute), [dict(t) for t in gold.distribute], list(layers[0].customize))
    assert "artifactTags" not in gold.distribute[0]


def test_the_baseline_is_the_gold_version_alone_without_provenance(gold):
    body = compose.baseline(gold, "eastus")
    assert step_names(body) == ["b1", "b2", "a1"]
    assert body["tags"] == {"owner": "security", "department": "baseline"}
    assert body == compose.without_provenance(compose.compose(gold, [], BuildContext(location="eastus")))


def test_the_baseline_with_provenance_is_what_a_gold_only_build_carries(gold):
    stamped = compose.baseline(gold, "eastus", provenance=True)
    assert stamped == compose.compose(gold, [], BuildContext(location="eastus"))
    assert stamped["tags"]["goldsmith.layers"] == ""


def test_the_template_name_is_deterministic_and_valid():
    build_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    name = compose.template_name(build_id, "a-very-long-gold-image-slug-that-goes-on-and-on")
    assert name == compose.template_name(build_id, "a-very-long-gold-image-slug-that-goes-on-and-on")
    assert schema.NAME_PATTERN.match(name)
    assert name.endswith(build_id.hex)


def test_the_hash_ignores_key_order():
    assert compose.template_sha256({"a": 1, "b": [1, 2]}) == compose.template_sha256({"b": [1, 2], "a": 1})
    assert compose.template_sha256({"a": 1}) != compose.template_sha256({"a": 2})


def test_the_real_sdk_reads_the_composition_back_unchanged(gold, layers):
    body = compose.compose(gold, layers, BuildContext(location="eastus", build_id=uuid.uuid4(), requester="bob"))
    result = azure.template_sdk_roundtrip(body)
    assert result.unknown_paths == ()
    assert result.serialized == body
    model = sdk_models.ImageTemplate(body)
    assert isinstance(model.properties.customize[0], sdk_models.ImageTemplateShellCustomizer)


# --- Many compositions, generated ---------------------------------------------------------------

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
lines = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz ./-", min_size=1, max_size=20)
                 .filter(lambda s: s.strip()), min_size=1, max_size=3)
sha = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
shell = st.one_of(
    st.builds(lambda n, i: {"type": "Shell", "name": n, "inline": i}, names, lines),
    st.builds(lambda n, c: {"type": "Shell", "name": n, "scriptUri": f"https://scripts.example.com/{n}.sh",
                            "sha256Checksum": c}, names, sha),
    st.builds(lambda n: {"type": "File", "name": n, "sourceUri": f"https://files.example.com/{n}",
                         "destination": f"/tmp/{n}"}, names),
)
powershell = st.one_of(
    st.builds(lambda n, i, e, codes: {"type": "PowerShell", "name": n, "inline": i, "runElevated": e,
                                      "runAsSystem": e, "validExitCodes": codes},
              names, lines, st.booleans(), st.lists(st.integers(0, 3010), max_size=3)),
    st.builds(lambda t: {"type": "WindowsRestart", "restartTimeout": t}, st.sampled_from(["5m", "10m", "2h"])),
    st.builds(lambda limit: {"type": "WindowsUpdate", "searchCriteria": "IsInstalled=0",
                             "filters": ["include:$true"], "updateLimit": limit}, st.integers(0, 1000)),
)
distributors = st.lists(st.one_of(
    st.builds(lambda n: {"type": "VHD", "runOutputName": n}, names),
    st.builds(lambda n, m: {"type": "SharedImage", "runOutputName": n, "galleryImageId": factories.GALLERY + "def",
                            "targetRegions": [{"name": "eastus", "replicaCount": 1, "storageAccountType": "Standard_LRS"}],
                            "versioning": {"scheme": "Latest", "major": m}, "excludeFromLatest": False},
              names, st.integers(-1, 5)),
    st.builds(lambda n: {"type": "ManagedImage", "runOutputName": n, "location": "eastus",
                         "imageId": f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/{n}"}, names),
), min_size=1, max_size=3, unique_by=lambda d: d["runOutputName"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(windows=st.booleans(), data=st.data(), dist=distributors, timeout=st.one_of(st.none(), st.integers(0, 960)),
       layer_count=st.integers(0, 3))
def test_every_composition_round_trips_through_the_sdk(windows, data, dist, timeout, layer_count):
    steps = powershell if windows else shell
    gold = GoldImageVersion(
        version="1.2.3", source={"type": "PlatformImage", "publisher": "p", "offer": "o", "sku": "s", "version": "latest"},
        customize_before=data.draw(st.lists(steps, max_size=3)), customize_after=data.draw(st.lists(steps, max_size=2)),
        validators_before=data.draw(st.lists(shell if not windows else st.builds(
            lambda n, i: {"type": "PowerShell", "name": n, "inline": i}, names, lines), max_size=2)),
        validate_options=data.draw(st.sampled_from([{}, {"continueDistributeOnFailure": True}])),
        distribute=dist, identity=factories.IDENTITY, build_timeout_minutes=timeout,
        vm_profile=data.draw(st.sampled_from([{}, {"vmSize": "Standard_D2ds_v5", "osDiskSizeGB": 64}])),
        error_handling=data.draw(st.sampled_from([{}, {"onCustomizerError": "abort"}])),
        optimize=data.draw(st.sampled_from([{}, {"vmBoot": {"state": "Enabled"}}])),
        tags={"owner": "sec"}, location="westus2",
    )
    gold.gold_image = GoldImage(slug="gold")
    layer_versions = [
        _layer(index, data.draw(st.lists(steps, max_size=3))) for index in range(layer_count)
    ]
    body = compose.compose(gold, layer_versions, BuildContext(location="eastus", build_id=uuid.uuid4(),
                                                              requester="bob"))
    assert schema.errors(schema.check_template(body)) == []
    result = azure.template_sdk_roundtrip(body)
    assert result.unknown_paths == ()
    assert result.serialized == body


def _layer(index, steps):
    # Unsaved rows: composition is pure and needs no database.
    layer = Layer(slug=f"layer{index}", department=Department(slug="web"))
    return LayerVersion(layer=layer, version="1.0.0", customize=steps, validators=[], tags={})


BUILD = uuid.UUID("0123456789abcdef0123456789abcdef")


@pytest.mark.parametrize("value, build_id, subscription, wanted", [
    ("", BUILD, "s1", ""),
    ("/subscriptions/s1/resourceGroups/mine", BUILD, "s1", "/subscriptions/s1/resourceGroups/mine"),
    ("goldsmith-named", BUILD, "s1", f"/subscriptions/s1/resourceGroups/goldsmith-staging-ubuntu-{BUILD.hex}"),
    ("goldsmith-named:corp-stg-", BUILD, "s1", f"/subscriptions/s1/resourceGroups/corp-stg-ubuntu-{BUILD.hex}"),
    ("goldsmith-named", None, "s1", "/subscriptions/s1/resourceGroups/goldsmith-staging-ubuntu-<build-id>"),
    ("goldsmith-named", BUILD, "", f"/subscriptions/<subscription-id>/resourceGroups/goldsmith-staging-ubuntu-"
                                   f"{BUILD.hex}"),
])
def test_a_goldsmith_named_staging_group_is_named_per_build(value, build_id, subscription, wanted):
    assert compose.staging_group(value, gold_slug="ubuntu", subscription=subscription, build_id=build_id) == wanted


@pytest.mark.parametrize("prefix, slug, wanted", [
    ("", "a" * 50, f"goldsmith-staging-{'a' * 39}-{BUILD.hex}"),  # the slug gives way, the uuid stays whole
    ("p" * 57, "ubuntu", f"{'p' * 57}{BUILD.hex}"),  # no room for the slug
    ("p" * 80, "ubuntu", f"{'p' * 80}{BUILD.hex[:10]}"),  # a policy prefix of 80 leaves 10 characters
    ("x-", "-ubuntu-", f"x-ubuntu-{BUILD.hex}"),
])
def test_a_staging_group_name_fits_azures_90_characters(prefix, slug, wanted):
    name = compose.staging_group_name(prefix, slug, BUILD)
    assert name == wanted
    assert len(name) <= compose.RESOURCE_GROUP_NAME_MAX


@pytest.mark.parametrize("value, mode", [
    ("", ("none", "")), ("goldsmith-named", ("goldsmith", "")), ("goldsmith-named:corp-", ("goldsmith", "corp-")),
    ("/subscriptions/s/resourceGroups/g", ("own", "/subscriptions/s/resourceGroups/g")),
])
def test_staging_mode_reads_what_the_wizard_stored(value, mode):
    assert compose.staging_mode(value) == mode
    if mode[0] == "goldsmith":
        assert compose.goldsmith_named(mode[1]) == value
