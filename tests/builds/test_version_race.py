"""Two requests creating the same gold or layer version at once: one gets the version, the
other the same clear refusal as when the version already existed (422 with the form), never a 500.

Both requests pass the "does it exist?" check before either inserts. On PostgreSQL they run
in two threads, each with its own connection, and meet at a barrier between the check and
the insert, so the second insert hits the unique constraint. SQLite takes its write lock when
a transaction begins (IMMEDIATE), so two writers queue: there the other request runs to its
end after this one's form accepted the number and before its service starts, and the
service's own check refuses it; the last test drives the insert's IntegrityError path
directly, so both creators are shown to map it to the same error.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.test import Client
from django.urls import reverse

from builds import services
from builds.models import GoldImageVersion, LayerVersion
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def race(monkeypatch, user, url: str, data: dict, service: str) -> list:
    """POST `data` to `url` twice "at once" as `user`; return both responses. `service` names
    the creator the view calls (for SQLite's interleaving)."""
    clients = [Client(), Client()]
    for client in clients:
        client.force_login(user)
    real = services._insert_version
    if connection.vendor == "postgresql":
        barrier = threading.Barrier(2, timeout=30)

        def insert(row, owner):
            barrier.wait()
            return real(row, owner)

        monkeypatch.setattr(services, "_insert_version", insert)
        responses: list = [None, None]

        def run(index: int) -> None:
            try:
                responses[index] = clients[index].post(url, data)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        return responses
    other: list = []
    create = getattr(services, service)

    def interleaved(**kwargs):
        if not other:
            other.append(None)
            other[0] = clients[1].post(url, data)
        return create(**kwargs)

    monkeypatch.setattr(services, service, interleaved)
    first = clients[0].post(url, data)
    return [first, other[0]]


def outcome(responses: list) -> list[int]:
    return sorted(response.status_code for response in responses)


def refused(responses: list):
    (response,) = [r for r in responses if r.status_code == 422]
    return response.content.decode()


def test_two_editors_creating_the_same_layer_version_get_one_version_and_one_refusal(monkeypatch, bob, web):
    gold = factories.make_gold_version(factories.make_gold_image("ubuntu"))
    layer = factories.make_layer(web, gold.gold_image, "app")
    factories.make_layer_version(layer, publish=False, customize=[])
    url = reverse("builds:layer-version-create", args=["web", "app"])
    responses = race(monkeypatch, bob, url, {"version": "1.1.0", "based_on": "", "changelog": "race"},
                     "layer_version_create")
    assert outcome(responses) == [302, 422]
    assert "Version 1.1.0 already exists." in refused(responses)
    assert LayerVersion.objects.filter(layer=layer, version="1.1.0").count() == 1


def test_two_security_members_creating_the_same_gold_version_get_one_version_and_one_refusal(monkeypatch, alice):
    gold = factories.make_gold_version(factories.make_gold_image("ubuntu"))
    url = reverse("builds:wizard-new-version", args=["ubuntu"])
    responses = race(monkeypatch, alice, url, {"version": "1.1.0", "based_on": "", "changelog": "race"},
                     "gold_version_create")
    assert outcome(responses) == [302, 422]
    assert "Version 1.1.0 already exists." in refused(responses)
    assert GoldImageVersion.objects.filter(gold_image=gold.gold_image, version="1.1.0").count() == 1


def test_both_creators_refuse_a_version_inserted_behind_their_check_with_the_same_error(bob, web):
    gold = factories.make_gold_version(factories.make_gold_image("ubuntu"))
    layer = factories.make_layer(web, gold.gold_image, "app")
    taken = factories.make_layer_version(layer, publish=False, customize=[])
    for row, owner in ((GoldImageVersion(gold_image=gold.gold_image, version=gold.version, created_by=bob), "ubuntu"),
                       (LayerVersion(layer=layer, version=taken.version, created_by=bob), str(layer))):
        with pytest.raises(services.ServiceError, match="already has a version") as caught:
            services._insert_version(row, owner)
        assert [p.rule for p in caught.value.problems] == ["catalog.version-taken"]
