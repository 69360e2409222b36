"""Fault rules (POST /_emulator/faults): throttling with Retry-After, 500/503, latency, dropped
connections, by operation, rate and count; and what the SDK's retry policy makes of them."""

from __future__ import annotations

import datetime as dt
import itertools
import time

import pytest
from azure.core.exceptions import AzureError, HttpResponseError

from tests.support.aib import Recorder, template_body
from tests.support.emulator import RESOURCE_GROUP

RG = RESOURCE_GROUP
GET = "VirtualMachineImageTemplates_Get"


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(emulator, recorder):
    client = emulator.imagebuilder_client(raw_response_hook=recorder)
    client.virtual_machine_image_templates.begin_create_or_update(RG, "web", template_body()).result()
    recorder.clear()
    return client


def moment(entry: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(entry["time"][:26])


def test_a_429_rule_throttles_with_retry_after_and_arms_error(emulator, client, recorder):
    emulator.add_fault(GET, 429, retry_after=3, count=1)

    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machine_image_templates.get(RG, "web")

    assert caught.value.status_code == 429
    assert caught.value.error.code == "TooManyRequests"
    assert "Please try again after '3' seconds" in caught.value.error.message
    headers = recorder.exchanges[-1].headers
    assert headers["Retry-After"] == "3"
    assert headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"
    assert client.virtual_machine_image_templates.get(RG, "web").name == "web"  # count 1: only once


def test_the_sdk_waits_out_retry_after_and_the_log_proves_it(emulator):
    client = emulator.imagebuilder_client(retry_total=3)
    client.virtual_machine_image_templates.begin_create_or_update(RG, "web", template_body()).result()
    since = emulator.last_seq()
    emulator.add_fault(GET, 429, retry_after=1, count=2)

    assert client.virtual_machine_image_templates.get(RG, "web").name == "web"

    entries = emulator.requests(since, operation=GET)
    assert [e["status"] for e in entries] == [429, 429, 200]
    for throttled, following in itertools.pairwise(entries):
        assert moment(following) - moment(throttled) >= dt.timedelta(seconds=float(throttled["retryAfter"]))


@pytest.mark.parametrize(("status", "code"), [(500, "InternalServerError"), (503, "ServiceUnavailable")])
def test_500_and_503_rules_answer_arm_error_bodies(emulator, client, status, code):
    emulator.add_fault(GET, status, count=1)

    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machine_image_templates.get(RG, "web")

    assert caught.value.status_code == status
    assert caught.value.error.code == code


def test_a_rule_may_carry_its_own_code_and_message(emulator, client):
    emulator.add_fault(GET, 503, count=1, code="GatewayTimeout",
                       message="The gateway did not receive a response from 'Microsoft.VirtualMachineImages' within "
                               "the specified time period.")

    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machine_image_templates.get(RG, "web")
    assert caught.value.error.code == "GatewayTimeout"


def test_count_limits_how_often_a_rule_fires(emulator, client):
    rule = emulator.add_fault(GET, 500, count=2)

    outcomes = []
    for _ in range(4):
        try:
            client.virtual_machine_image_templates.get(RG, "web")
            outcomes.append(200)
        except HttpResponseError as error:
            outcomes.append(error.status_code)

    assert outcomes == [500, 500, 200, 200]
    listed = emulator.control("GET", "faults").json()["value"]
    assert listed[0]["id"] == rule["id"] and listed[0]["hits"] == 2 and listed[0]["count"] == 0


def test_rate_fires_a_seeded_fraction_of_the_time(emulator, client):
    emulator.add_fault(GET, 500, rate=0.5, seed=7)

    failures = 0
    for _ in range(40):
        try:
            client.virtual_machine_image_templates.get(RG, "web")
        except HttpResponseError:
            failures += 1

    assert 10 <= failures <= 30


def test_rate_zero_never_fires(emulator, client):
    emulator.add_fault("*", 500, rate=0)

    for _ in range(5):
        client.virtual_machine_image_templates.get(RG, "web")


def test_star_matches_every_arm_operation_but_not_the_control_api_or_sign_in(emulator, client):
    emulator.add_fault("*", 503)

    with pytest.raises(HttpResponseError):
        client.virtual_machine_image_templates.get(RG, "web")
    with pytest.raises(HttpResponseError):
        list(client.virtual_machine_image_templates.list())
    assert emulator.clock()["frozen"] is False  # the control API still answers
    fresh = emulator.credential()
    assert fresh.get_token("https://management.azure.com/.default").token  # and so does Entra


def test_a_rule_can_target_one_template(emulator, client):
    client.virtual_machine_image_templates.begin_create_or_update(RG, "api", template_body()).result()
    emulator.add_fault("VirtualMachineImageTemplates_*", 500, template="api")

    assert client.virtual_machine_image_templates.get(RG, "web").name == "web"
    with pytest.raises(HttpResponseError):
        client.virtual_machine_image_templates.get(RG, "api")


def test_latency_delays_the_answer(emulator, client):
    emulator.add_fault(GET, latency_ms=300, count=1)

    started = time.monotonic()
    client.virtual_machine_image_templates.get(RG, "web")

    assert time.monotonic() - started >= 0.3


def test_drop_closes_the_connection_without_an_answer(emulator, client):
    since = emulator.last_seq()
    emulator.add_fault(GET, drop=True, count=1)

    with pytest.raises(AzureError) as caught:
        client.virtual_machine_image_templates.get(RG, "web")

    assert not isinstance(caught.value, HttpResponseError) or caught.value.status_code is None
    assert emulator.requests(since, operation=GET)[0]["status"] == 0
    assert client.virtual_machine_image_templates.get(RG, "web").name == "web"


def test_faults_are_listed_removed_one_by_one_and_cleared(emulator, client):
    first = emulator.add_fault(GET, 500)
    emulator.add_fault("VirtualMachineImageTemplates_List", 500)

    emulator.control("DELETE", f"faults/{first['id']}", expect=204)
    assert [rule["operation"] for rule in emulator.control("GET", "faults").json()["value"]] == [
        "VirtualMachineImageTemplates_List"]
    assert client.virtual_machine_image_templates.get(RG, "web").name == "web"

    emulator.clear_faults()
    assert emulator.control("GET", "faults").json()["value"] == []


@pytest.mark.parametrize("rule", [
    {"operation": "*", "status": 418},
    {"operation": "*", "status": 500, "rate": 2},
    {"operation": "*"},
    {"operation": "*", "status": 500, "colour": "red"},
])
def test_invalid_rules_are_refused(emulator, rule):
    emulator.control("POST", "faults", rule, expect=400)


def test_reset_clears_the_faults(emulator, client):
    emulator.add_fault("*", 500)

    emulator.reset()

    assert emulator.control("GET", "faults").json()["value"] == []
