"""The Django admin and the RQ dashboard admit the admin role only; the staff flag grants nothing."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse

from portal.models import AuditEvent, Department, Membership, RoleMapping
from tests import factories


def login(client, user):
    client.force_login(user)
    return client


@pytest.mark.parametrize(("persona", "expected"), [
    ("sam", 403), ("alice", 403), ("bob", 403), ("dave", 403), ("erin", 200),
])
def test_the_admin_index_is_for_the_admin_role(client, persona, request, expected):
    user = request.getfixturevalue(persona)
    assert login(client, user).get(reverse("admin:index")).status_code == expected


def test_anonymous_visitors_go_to_the_portal_sign_in(client, db):
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    follow = client.get(response["Location"])
    assert follow.status_code == 302
    assert follow["Location"].startswith(reverse("portal:login"))


def test_a_staff_user_without_the_role_is_refused_and_audited(client, sam):
    login(client, sam).get(reverse("admin:portal_department_changelist"))
    event = AuditEvent.objects.filter(action="access.denied").latest("id")
    assert (event.actor_name, event.outcome) == ("sam", "denied")


def test_the_admin_role_administers_people_but_not_the_catalog_or_the_audit_trail(client, erin):
    login(client, erin)
    index = client.get(reverse("admin:index")).content.decode()
    assert "Departments" in index and "Memberships" in index and "Role mappings" in index and "Users" in index
    assert "Gold image" not in index and "Audit events" not in index
    assert client.get(reverse("admin:builds_build_changelist")).status_code == 403
    assert client.get(reverse("admin:portal_auditevent_changelist")).status_code == 403


def test_a_superuser_keeps_break_glass_access(client, db):
    root = factories.make_user("root", is_superuser=True, is_staff=True)
    assert login(client, root).get(reverse("admin:builds_build_changelist")).status_code == 200


def test_admin_changes_are_audited(client, erin, web):
    login(client, erin)
    response = client.post(reverse("admin:portal_rolemapping_add"),
                           {"claim_value": "Goldsmith.Editor.web", "role": "editor", "department": web.pk})
    assert response.status_code == 302, response.content.decode()[:2000]
    mapping = RoleMapping.objects.get()
    event = AuditEvent.objects.filter(action="rolemapping.create").get()
    assert (event.actor_name, event.object_id) == ("erin", str(mapping.pk))

    client.post(reverse("admin:portal_rolemapping_delete", args=[mapping.pk]), {"post": "yes"})
    assert AuditEvent.objects.filter(action="rolemapping.delete").count() == 1


def test_the_admin_role_can_grant_memberships(client, erin, web):
    user = factories.make_user("newcomer")
    login(client, erin)
    response = client.post(reverse("admin:portal_membership_add"), {"user": user.pk, "role": "editor",
                                                                     "department": web.pk})
    assert response.status_code == 302
    assert Membership.objects.filter(user=user, role="editor", department=web).exists()
    assert AuditEvent.objects.filter(action="membership.create").count() == 1


def test_admin_sign_out_goes_through_the_portal(client, erin):
    login(client, erin)
    response = client.post(reverse("admin:logout"))
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="auth.logout").count() == 1


# --- RQ dashboard ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("persona", "expected"), [
    ("sam", 403), ("alice", 403), ("bob", 403), ("dave", 403), ("erin", 200),
])
def test_the_rq_dashboard_is_for_the_admin_role(client, persona, request, expected):
    user = request.getfixturevalue(persona)
    login(client, user)
    assert client.get(reverse("django_rq:home")).status_code == expected
    assert client.get(reverse("django_rq:home_json")).status_code == expected


def test_the_rq_dashboard_sends_anonymous_visitors_to_sign_in(client, db):
    response = client.get(reverse("django_rq:home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login"))


def test_the_staff_flag_is_not_saved_by_the_rq_guard(client, erin):
    login(client, erin).get(reverse("django_rq:home"))
    assert not get_user_model().objects.get(pk=erin.pk).is_staff
    assert Department.objects.count() == 0


def test_the_admin_sign_in_never_redirects_off_site(client, erin):
    login(client, erin)
    response = client.get(reverse("admin:login") + "?next=https://evil.example/")
    assert response["Location"] == reverse("admin:index")
    assert client.get(reverse("admin:login") + "?next=/admin/portal/")["Location"] == "/admin/portal/"


# The dashboard's pages for a queue, scheduler, job or worker that does not exist.
RQ_UNKNOWN = [
    *[(name, {"queue_index": 99}) for name in (
        "jobs", "queue_details", "finished_jobs", "failed_jobs", "delete_failed_jobs", "scheduled_jobs",
        "started_jobs", "deferred_jobs", "clear", "requeue_all", "confirm_action", "actions", "workers")],
    *[(name, {"queue_index": 0, "job_id": "no-such-job"}) for name in (
        "job_detail", "delete_job", "requeue_job", "enqueue_job", "stop_job")],
    ("job_detail", {"queue_index": 99, "job_id": "no-such-job"}),
    ("result_detail", {"queue_index": 0, "job_id": "no-such-job", "result_id": "1"}),
    ("worker_details", {"queue_index": 0, "key": "no-such-worker"}),
    ("worker_details", {"queue_index": 0, "key": "rq:worker:gone"}),
    ("worker_details", {"queue_index": 99, "key": "rq:worker:gone"}),
    ("scheduler_jobs", {"scheduler_index": 0}),  # rq-scheduler's page: Goldsmith runs RQ's own scheduler
    ("scheduler_jobs", {"scheduler_index": 99}),
    ("cron_scheduler_detail", {"connection_index": 0, "scheduler_name": "no-such-scheduler"}),
    ("cron_job_detail", {"connection_index": 0, "scheduler_name": "no-such-scheduler", "cron_job_name": "x"}),
]


@pytest.fixture
def rq_client(client, erin):
    from tests.support.workers import flush_redis

    flush_redis()
    client.raise_request_exception = False  # a server error is an answer here, not a test error
    yield login(client, erin)
    flush_redis()


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize(("name", "kwargs"), RQ_UNKNOWN, ids=lambda value: value if isinstance(value, str) else
                         "-".join(str(v) for v in value.values()))
def test_the_rq_dashboard_answers_404_for_what_does_not_exist(rq_client, name, kwargs, method):
    response = getattr(rq_client, method)(reverse(f"django_rq:{name}", kwargs=kwargs))
    assert response.status_code == 404


def test_an_rq_bulk_action_on_a_missing_job_is_404(rq_client):
    response = rq_client.post(reverse("django_rq:actions", kwargs={"queue_index": 0}),
                              {"action": "delete", "job_ids": ["no-such-job"]})
    assert response.status_code == 404


def test_the_rq_dashboard_still_shows_jobs_and_workers_that_exist(rq_client):
    import django_rq
    from rq import Queue
    from rq.worker import Worker

    # A plain RQ queue: django-rq's own would wait for the test's transaction to commit.
    queue = Queue("default", connection=django_rq.get_connection("default"))
    job = queue.enqueue("builtins.print", "hello")
    index = sorted(settings.RQ_QUEUES).index("default")
    assert rq_client.get(reverse("django_rq:job_detail", kwargs={"queue_index": index, "job_id": job.id})).status_code == 200
    worker = Worker([queue], connection=queue.connection, name="matrix-worker")
    worker.register_birth()
    try:
        url = reverse("django_rq:worker_details", kwargs={"queue_index": index, "key": worker.key})
        assert rq_client.get(url).status_code == 200
    finally:
        worker.register_death()
