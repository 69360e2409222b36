"""The operator page: queues, workers, sweep age, ARM rate limits, Azure mode."""

import re
import time

import django_rq
import pytest
from django.core.cache import cache
from django.urls import reverse
from rq import Queue

URL = "/operator/"


def test_url_name_matches():
    assert reverse("portal:operator") == URL


@pytest.mark.parametrize("persona", ["alice", "bob", "dave", "sam"])
def test_only_admins_open_it(client, request, persona):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(URL).status_code == 403


def test_strangers_are_sent_to_sign_in(client):
    assert client.get(URL)["Location"].startswith(reverse("portal:login"))


def test_it_shows_queues_workers_sweep_rate_limits_and_mode(client, erin, settings):
    settings.AZURE_EMULATOR = True
    from builds import azure, monitor

    django_rq.get_connection("default").flushdb()
    # rq's own Queue: django_rq's would wait for the test's transaction to commit.
    Queue("builds", connection=django_rq.get_connection("builds")).enqueue("builtins.print", "waiting")
    cache.set(monitor.SWEEP_LAST, time.time() - 5, timeout=60)
    azure._record_rate_limits(settings.AZURE_SUBSCRIPTION_ID.lower(),
                              {"x-ms-ratelimit-remaining-subscription-reads": "11987"})
    client.force_login(erin)
    page = client.get(URL).content.decode()
    assert "Emulator" in page and settings.AZURE_ARM_ENDPOINT in page
    assert "<td>builds</td><td class=\"num\">1</td>" in page
    assert "No worker is running." in page
    assert re.search(r"Last sweep <strong>[45]\.\ds</strong> ago", page)
    assert "<strong>11987</strong>" in page
    django_rq.get_connection("default").flushdb()


def test_it_says_when_no_sweep_has_run(client, erin):
    from builds import monitor

    cache.delete(monitor.SWEEP_LAST)
    client.force_login(erin)
    assert "No sweep has run" in client.get(URL).content.decode()


def test_it_lists_builds_stuck_in_canceling(client, erin, alice):
    from django.utils import timezone

    from builds.models import Build
    from tests import factories
    from tests.support import build_rows

    gold_version = factories.make_gold_version(actor=alice)
    stuck, canceling = (build_rows.make_build(gold_version, requested_by=alice) for _ in range(2))
    Build.objects.filter(pk__in=(stuck.pk, canceling.pk)).update(state=Build.State.CANCELING,
                                                                  cancel_requested_at=timezone.now())
    Build.objects.filter(pk=stuck.pk).update(stuck_reported=True)
    client.force_login(erin)
    page = client.get(URL).content.decode()
    assert "canceling for over 60 minutes" in page
    assert stuck.template_name in page and canceling.template_name not in page
    assert reverse("builds:build-detail", args=[stuck.uuid]) in page
