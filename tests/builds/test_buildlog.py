from builds import buildlog

LOG = """2026/01/01 12:00:00 Image Builder run abc for image template 'gs-x' queued.
2026/01/01 12:00:01 PACKER OUT ==> azure-arm: (telemetry) Starting provisioner shell
2026/01/01 12:00:02 PACKER OUT ==> azure-arm: Provisioning with shell script: /tmp/packer-shell-0.sh
2026/01/01 12:00:03 PACKER OUT     azure-arm: + sudo apt-get update
2026/01/01 12:00:04 PACKER OUT ==> azure-arm: (telemetry) ending shell
2026/01/01 12:00:05 PACKER OUT ==> azure-arm: (telemetry) Starting provisioner shell
2026/01/01 12:00:06 PACKER OUT ==> azure-arm: Provisioning with shell script: /tmp/packer-shell-1.sh
2026/01/01 12:00:07 PACKER OUT     azure-arm: + exit 3
2026/01/01 12:00:08 PACKER ERR ==> azure-arm: Script exited with non-zero exit status: 3. Allowed exit codes are: [0]
"""
TEMPLATE = {"properties": {"customize": [{"type": "Shell", "name": "update", "inline": ["sudo apt-get update"]},
                                         {"type": "Shell", "name": "install-app", "inline": ["exit 3"]}]}}


def test_it_names_the_failing_step_from_the_script_index():
    found = buildlog.failing_step(LOG, TEMPLATE)
    assert found.name == "install-app"
    assert found.index == 1
    assert found.message == "Script exited with non-zero exit status: 3. Allowed exit codes are: [0]"
    assert found.line == 9


def test_it_finds_nothing_in_a_clean_log():
    assert buildlog.failing_step(LOG.splitlines()[0], TEMPLATE) is None


def test_it_falls_back_to_the_provisioner_type_when_the_step_is_unknown():
    log = "PACKER OUT ==> azure-arm: (telemetry) Starting provisioner windows-restart\n" \
          "PACKER ERR ==> azure-arm: Timeout waiting for restart\n"
    found = buildlog.failing_step(log, TEMPLATE)
    assert found.name == "windows-restart"
    assert found.index is None


def test_it_reads_the_log_location_from_azures_message():
    message = ("... Image Build log location: https://example.blob/logs/x/customization.log. OperationId: 1. Use")
    assert buildlog.log_location(message) == "https://example.blob/logs/x/customization.log"
    assert buildlog.log_location("nothing here") == ""
