"""The control API: request log, stats, ARM response headers, clock, settings, reset, denials and
the authentication every ARM route goes through."""

from __future__ import annotations

import datetime as dt

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

from tests.support.aib import Recorder, template_body
from tests.support.emulator import RESOURCE_GROUP, SUBSCRIPTION_ID, WORKER_CLIENT_ID

RG = RESOURCE_GROUP


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(emulator, recorder):
    return emulator.imagebuilder_client(raw_response_hook=recorder)


def create(client, name: str = "web") -> None:
    client.virtual_machine_image_templates.begin_create_or_update(RG, name, template_body()).result()


def test_the_request_log_records_each_arm_call(emulator, client):
    create(client)
    since = emulator.last_seq()
    client.virtual_machine_image_templates.get(RG, "web")

    entries = emulator.requests(since)

    assert len(entries) == 1
    entry = entries[0]
    assert entry["seq"] > since
    assert entry["method"] == "GET"
    assert entry["path"] == f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RG}/providers/" \
                            "Microsoft.VirtualMachineImages/imageTemplates/web"
    assert entry["operation"] == "VirtualMachineImageTemplates_Get"
    assert entry["template"] == "web"
    assert entry["clientId"] == WORKER_CLIENT_ID
    assert entry["status"] == 200
    assert entry["retryAfter"] is None
    assert dt.datetime.fromisoformat(entry["time"].replace("0Z", "+00:00"))


def test_polls_are_logged_against_their_template_with_the_retry_after_sent(emulator, client):
    create(client)

    entries = emulator.requests(operation="VirtualMachineImageTemplates_CreateOrUpdate")
    polls = emulator.requests(operation="ImageBuilderOperations_GetStatus")

    assert entries[0]["status"] == 201 and entries[0]["retryAfter"] == "0"
    assert polls and {poll["template"] for poll in polls} == {"web"}


def test_refused_and_unmatched_requests_are_logged_too(emulator, client):
    emulator.control("GET", "/subscriptions/x/providers/Nothing/here", expect=None)
    emulator.http.get(f"{emulator.base_url}/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RG}",
                      params={"api-version": "2025-04-01"}, verify=str(emulator.ca_path))

    entries = emulator.requests()

    unmatched, refused = entries[-2:]
    assert (unmatched["operation"], unmatched["status"]) == ("Unmatched", 404)
    assert (refused["operation"], refused["status"]) == ("ResourceGroups_Get", 401)


def test_the_log_can_include_or_exclude_control_calls(emulator):
    emulator.clock()

    assert any(e["operation"] == "Control_GetClock" for e in emulator.requests(control=True))
    assert not any(e["kind"] == "control" for e in emulator.requests())


def test_stats_count_by_operation_template_and_status_without_control_calls(emulator, client):
    create(client, "one")
    since = emulator.last_seq()
    client.virtual_machine_image_templates.get(RG, "one")
    client.virtual_machine_image_templates.get(RG, "one")
    with pytest.raises(ResourceNotFoundError):
        client.virtual_machine_image_templates.get(RG, "two")
    emulator.clock()

    stats = emulator.stats(since)

    assert stats["byOperation"] == {"VirtualMachineImageTemplates_Get": 3}
    assert stats["byTemplate"] == {"one": 2, "two": 1}
    assert stats["byStatus"] == {"200": 2, "404": 1}
    assert stats["total"] == 3


def test_every_arm_answer_carries_request_ids_and_remaining_requests(client, recorder):
    create(client)
    recorder.clear()
    templates = client.virtual_machine_image_templates

    templates.get(RG, "web")
    templates.get(RG, "web")
    templates.begin_update(RG, "web", {"tags": {"a": "b"}}).result()

    first, second = [e for e in recorder.exchanges if e.method == "GET"][:2]
    for exchange in (first, second):
        assert len(exchange.headers["x-ms-request-id"]) == 36
        assert exchange.headers["x-ms-correlation-request-id"]
    reads = [int(e.headers["x-ms-ratelimit-remaining-subscription-reads"]) for e in (first, second)]
    assert reads[0] - 1 == reads[1] and reads[1] < 12000
    assert int(recorder.first("PATCH").headers["x-ms-ratelimit-remaining-subscription-writes"]) < 1200


def test_the_clock_freezes_advances_and_rescales(emulator):
    frozen = emulator.freeze()
    assert frozen["frozen"] is True
    assert emulator.clock()["now"] == frozen["now"]

    moved = emulator.advance(3600)
    assert dt.datetime.fromisoformat(moved["now"][:26]) - dt.datetime.fromisoformat(frozen["now"][:26]) == \
        dt.timedelta(hours=1)

    assert emulator.set_time_scale(50)["time_scale"] == 50
    thawed = emulator.unfreeze()
    assert thawed["frozen"] is False and thawed["now"] >= moved["now"]


def test_the_clock_only_moves_forward(emulator):
    response = emulator.control("POST", "clock", {"advance_seconds": -5}, expect=400)

    assert "only moves forward" in response.json()["error"]["message"]


def test_reset_restores_the_seed_the_clock_and_the_settings(emulator, client):
    create(client)
    emulator.set_time_scale(5)
    emulator.freeze()
    emulator.settings(retry_after=3)
    emulator.deny(WORKER_CLIENT_ID, "*")

    emulator.reset()

    assert emulator.requests() == []
    state = emulator.clock()
    assert state["frozen"] is False and state["time_scale"] == emulator.startup_time_scale
    assert emulator.settings() == {}
    assert emulator.control("GET", "denials").json()["value"] == []
    assert list(client.virtual_machine_image_templates.list_by_resource_group(RG)) == []


def test_the_retry_after_setting_is_what_lro_answers_carry(emulator, client, recorder):
    emulator.settings(retry_after=0)
    create(client)
    assert recorder.first("PUT").headers["Retry-After"] == "0"

    emulator.settings(retry_after=7)
    client.virtual_machine_image_templates.begin_run(RG, "web", polling=False)
    assert recorder.first("POST").headers["Retry-After"] == "7"


def test_by_default_retry_after_is_ten_seconds_divided_by_the_time_scale(emulator, client, recorder):
    emulator.settings(retry_after=None)
    emulator.set_time_scale(2)
    client.virtual_machine_image_templates.begin_create_or_update(RG, "web", template_body(), polling=False)

    assert recorder.first("PUT").headers["Retry-After"] == "5"


def test_every_lro_answer_says_retry_after_at_least_one_second_at_any_time_scale(emulator, client, recorder):
    emulator.settings(retry_after=None)
    emulator.set_time_scale(20000)
    client.virtual_machine_image_templates.begin_create_or_update(RG, "web", template_body()).result()
    client.virtual_machine_image_templates.begin_run(RG, "web").result()

    lro = [e for e in recorder.exchanges if e.method in ("PUT", "POST") or "/operations" in e.url.lower()]
    assert len(lro) >= 4  # PUT, its poll, POST run, its poll(s)
    assert all(e.headers.get("Retry-After") == "1" for e in lro), [(e.method, e.url, e.headers.get("Retry-After"))
                                                                   for e in lro]


def test_unknown_settings_are_refused(emulator):
    emulator.control("POST", "settings", {"colour": "blue"}, expect=400)


def test_a_denied_action_answers_authorization_failed(emulator, client):
    create(client)
    emulator.deny(WORKER_CLIENT_ID, "Microsoft.VirtualMachineImages/imageTemplates/run/action")

    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machine_image_templates.begin_run(RG, "web")

    assert caught.value.status_code == 403
    assert caught.value.error.code == "AuthorizationFailed"
    scope = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RG}/providers/Microsoft.VirtualMachineImages/" \
            "imageTemplates/web"
    assert "does not have authorization to perform action " \
           f"'Microsoft.VirtualMachineImages/imageTemplates/run/action' over scope '{scope}'" in caught.value.error.message
    assert caught.value.error.message.endswith("If access was recently granted, please refresh your credentials.")
    assert client.virtual_machine_image_templates.get(RG, "web").name == "web"  # reads are still allowed


def test_denials_can_be_limited_to_a_scope_and_cleared(emulator, client):
    create(client, "web")
    create(client, "api")
    emulator.deny(WORKER_CLIENT_ID, "*/read", scope=f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RG}/providers/"
                                                    "Microsoft.VirtualMachineImages/imageTemplates/web")

    with pytest.raises(HttpResponseError) as caught:
        client.virtual_machine_image_templates.get(RG, "web")
    assert caught.value.status_code == 403
    assert client.virtual_machine_image_templates.get(RG, "api").name == "api"

    emulator.clear_denials()
    assert client.virtual_machine_image_templates.get(RG, "web").name == "web"


def test_a_denial_applies_to_other_services_too(emulator):
    emulator.deny(WORKER_CLIENT_ID, "Microsoft.Compute/galleries/*")
    compute = emulator.compute_client()

    with pytest.raises(HttpResponseError) as caught:
        list(compute.galleries.list())
    assert caught.value.error.code == "AuthorizationFailed"


class _GarbageToken:
    def get_token(self, *scopes, **kwargs):
        return AccessToken("not.a.token", int(dt.datetime.now(dt.UTC).timestamp()) + 3600)

    def get_token_info(self, *scopes, options=None):
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo("not.a.token", int(dt.datetime.now(dt.UTC).timestamp()) + 3600)


def test_a_token_the_emulator_did_not_sign_is_refused_with_401(emulator):
    client = emulator.imagebuilder_client(credential=_GarbageToken())

    with pytest.raises(ClientAuthenticationError) as caught:
        client.virtual_machine_image_templates.get(RG, "web")
    assert caught.value.status_code == 401
    assert caught.value.error.code == "InvalidAuthenticationToken"


def test_log_times_are_wall_clock_even_when_the_emulator_clock_is_frozen(emulator, client):
    create(client)
    frozen = emulator.freeze()["now"]
    since = emulator.last_seq()
    client.virtual_machine_image_templates.get(RG, "web")
    client.virtual_machine_image_templates.get(RG, "web")

    first, second = emulator.requests(since)

    assert first["emulatorTime"] == second["emulatorTime"] == frozen
    assert second["time"] >= first["time"] and first["time"] != frozen


def test_provisioning_can_be_made_instant_without_speeding_up_builds(emulator, imagebuilder_client):
    from tests.support.aib import template_body

    emulator.settings(provision_seconds=0)
    emulator.set_time_scale(1)
    templates = imagebuilder_client.virtual_machine_image_templates
    created = templates.begin_create_or_update("goldsmith-images", "instant", template_body()).result()
    assert created.provisioning_state == "Succeeded"
    templates.begin_run("goldsmith-images", "instant", polling=False)
    status = templates.get("goldsmith-images", "instant").last_run_status
    assert (status.run_state, status.run_sub_state) == ("Running", "Queued")
    emulator.control("POST", "settings", {"provision_seconds": -1}, expect=400)
