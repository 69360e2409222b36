"""`python -m emulator` as a process: it prints its URL, keeps state in --data-dir across a
restart (even a kill), resumes builds where the clock says they are, and reuses its CA."""

from __future__ import annotations

import pytest

from tests.support.aib import gallery_target, template_body
from tests.support.emulator import RESOURCE_GROUP, EmulatorHandle, EmulatorProcess

RG = RESOURCE_GROUP


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "emulator"


def start(data_dir, **kwargs) -> tuple[EmulatorProcess, EmulatorHandle]:
    process = EmulatorProcess(data_dir, time_scale=kwargs.pop("time_scale", 600), **kwargs).start()
    return process, EmulatorHandle(process.base_url, process.ca_path, process)


def test_it_prints_its_base_url_and_creates_the_ca_in_the_data_dir(data_dir):
    process, emulator = start(data_dir)
    try:
        assert process.base_url.startswith("https://127.0.0.1:")
        assert (data_dir / "ca.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
        assert emulator.control("GET", "health").json()["status"] == "ok"
    finally:
        process.stop()


def test_a_restart_keeps_templates_and_resumes_their_builds(data_dir):
    process, emulator = start(data_dir)
    ca_before = (data_dir / "ca.pem").read_bytes()
    try:
        templates = emulator.imagebuilder_client().virtual_machine_image_templates
        templates.begin_create_or_update(RG, "web", template_body(distribute=[gallery_target()])).result()
        templates.begin_run(RG, "web", polling=False)
        assert templates.get(RG, "web").last_run_status.run_state == "Running"
    finally:
        process.stop(kill=True)  # no clean shutdown: what was committed must survive

    process, emulator = start(data_dir)
    try:
        assert (data_dir / "ca.pem").read_bytes() == ca_before
        client = emulator.imagebuilder_client()
        templates = client.virtual_machine_image_templates
        assert templates.get(RG, "web").provisioning_state == "Succeeded"

        last = emulator.wait_for(lambda: (status := templates.get(RG, "web").last_run_status).run_state
                                 != "Running" and status, timeout=30)
        assert last.run_state == "Succeeded"
        artifact = templates.get_run_output(RG, "web", "acg").artifact_id
        assert artifact.endswith("/ubuntu-gen2-tl/versions/2.1.1")
        version = emulator.compute_client().gallery_image_versions.get(
            "goldsmith-galleries", "goldsmith_gallery", "ubuntu-gen2-tl", "2.1.1")
        assert version.name == "2.1.1"
    finally:
        process.stop()


def test_a_moved_clock_survives_a_restart(data_dir):
    process, emulator = start(data_dir)
    try:
        moved = emulator.advance(7200)["now"]
    finally:
        process.stop()

    process, emulator = start(data_dir)
    try:
        assert emulator.clock()["now"] >= moved
    finally:
        process.stop()


def test_without_a_data_dir_state_lives_in_memory(tmp_path):
    process, emulator = start(None)
    try:
        templates = emulator.imagebuilder_client().virtual_machine_image_templates
        templates.begin_create_or_update(RG, "web", template_body()).result()
        assert [t.name for t in templates.list_by_resource_group(RG)] == ["web"]
    finally:
        process.stop()

    process, emulator = start(None)
    try:
        templates = emulator.imagebuilder_client().virtual_machine_image_templates
        assert list(templates.list_by_resource_group(RG)) == []
    finally:
        process.stop()
