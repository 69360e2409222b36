"""The URL x role x method expectation table (tests/portal/test_url_matrix.py runs it).

ONE ROW PER URL NAME. When you add a URL pattern, add its row here (the matrix test fails for
any named pattern without one, and for any row whose name no longer exists). docs/security.md,
"Adding a URL to the access matrix", explains the format; in short:

    "builds:layer-detail": Row(
        kwargs=lambda w: {"department": "web", "slug": w.web_layer.slug},
        get= "login 403 ok ok 404 ok 403",
        post="login 405 405 405 405 405 405"),

Each expectation string has one outcome per persona, in this order:

    anonymous  sam (staff flag, no role)  alice (security)  bob (editor of web: OWN department)
    carol (editor of data: the OTHER department)  dave (auditor)  erin (admin)

so objects in `kwargs` should belong to the web department (bob's) wherever a department
matters. Outcomes:

    ok     allowed: any status below 400 that is not a redirect to a sign-in page, or 400/409/415/422
           (the request was admitted and then judged invalid: the matrix posts empty forms, which
           the JSON API refuses with 415)
    in     admitted: anything but 401, 403, 5xx and a redirect to sign-in (404 allowed: for
           fixtures a page cannot know, e.g. RQ job ids)
    login  a redirect to the portal's or the admin's sign-in page (anonymous on pages)
    401 403 404 405   exactly that status
    no     refused somehow: 401, 403, 404, 405 or a redirect to sign-in (only where the order of
           the checks is not part of the contract)

`get`, `post` (and, for the API, `put`, `patch`, `delete`) are the methods tested; POSTs carry
an empty form without a CSRF token check (CSRF is tested separately). Every request runs in a
rolled-back transaction, so a POST that succeeds does not change the world for the next persona.

The world (`w` in kwargs) is built by `build_world` in test_url_matrix.py; its fields are listed
there. Add a field there if your URL needs an object that does not exist yet.

Django admin URLs are not listed by hand: every `admin:` name gets the generated row from
`admin_row()` (admin role only, and only for the models that role administers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PERSONAS = ("anonymous", "sam", "alice", "bob", "carol", "dave", "erin")
METHODS = ("get", "post", "put", "patch", "delete")
TOKENS = {"ok", "in", "login", "no", "401", "403", "404", "405"}


@dataclass(frozen=True)
class Row:
    kwargs: Callable[[Any], dict] | None = None
    get: str | None = None
    post: str | None = None
    put: str | None = None
    patch: str | None = None
    delete: str | None = None
    note: str = ""

    def expectations(self) -> dict[str, dict[str, str]]:
        """{method: {persona: token}} for the methods this row tests."""
        result = {}
        for method in METHODS:
            text = getattr(self, method)
            if text is None:
                continue
            tokens = text.split()
            if len(tokens) != len(PERSONAS) or not set(tokens) <= TOKENS:
                raise ValueError(f"expectations need {len(PERSONAS)} of {sorted(TOKENS)}, got {text!r}")
            result[method] = dict(zip(PERSONAS, tokens, strict=True))
        return result


def same(token: str) -> str:
    return " ".join([token] * len(PERSONAS))


# Shorthands for the common shapes (anonymous first, then sam, alice, bob, carol, dave, erin).
SIGNED_IN_GET = "login ok ok ok ok ok ok"
GET_ONLY = "login 405 405 405 405 405 405"          # POST to a @login_required @require_GET page
POST_ONLY = "login 405 405 405 405 405 405"         # GET to a @login_required @require_POST endpoint
CATALOG_READ = "login 403 ok ok ok ok 403"          # security, editors, auditors; not sam or admin
OWN_DEPARTMENT_READ = "login 403 ok ok 404 ok 403"  # an object of web: carol is an outsider
BUILD_READ = "login 403 ok ok ok ok ok"            # catalog readers, and the admin role (builds only)
BUILD_DEPARTMENT_READ = "login 403 ok ok 404 ok ok"  # a build of web: carol is an outsider, erin reads it
AUDIT_READ = "login 403 ok 403 403 ok 403"          # security and auditors
AUDITOR_ONLY = "login 403 403 403 403 ok 403"
ADMIN_ONLY = "login 403 403 403 403 403 ok"
# The API (api/): anonymous callers get 401; the matrix calls it with the personas' sessions.
API_CATALOG_READ = "401 403 ok ok ok ok 403"
API_OWN_DEPARTMENT_READ = "401 403 ok ok 404 ok 403"
API_NO_METHOD = "401 405 405 405 405 405 405"  # authentication comes first, then the method

ROWS: dict[str, Row] = {
    # --- portal: sign-in, profile, tokens --------------------------------------------------------
    "portal:home": Row(get=SIGNED_IN_GET, post=GET_ONLY),
    "portal:login": Row(get=same("ok"), post=same("ok")),
    "portal:logout": Row(get=same("405"), post=same("login")),  # signed out, back to the sign-in page
    # Entra ID is not configured in the matrix run: its pages answer 404 (test_entra_signin.py
    # covers them configured).
    "portal:entra-start": Row(get=same("404"), post=same("405")),
    "portal:entra-callback": Row(get=same("404"), post=same("405")),
    "portal:profile": Row(get=SIGNED_IN_GET, post=GET_ONLY),
    "portal:token-create": Row(get=POST_ONLY, post="login ok ok ok ok ok ok"),
    "portal:token-revoke": Row(kwargs=lambda w: {"token_uuid": w.bob_token.uuid},
                               get=POST_ONLY, post="login 404 404 ok 404 404 404",
                               note="bob's token: only its owner may revoke it"),
    "portal:operator": Row(get=ADMIN_ONLY, post="login 403 403 403 403 403 405"),
    # --- notify: subscriptions, shared endpoints (docs/events.md) ---------------------------------
    "notify:subscriptions": Row(get=SIGNED_IN_GET, post="login ok ok ok ok ok ok"),
    "notify:unsubscribe": Row(kwargs=lambda w: {"token": w.bob_unsubscribe}, get=same("ok"), post=same("ok"),
                              note="a signed link from a message: no sign-in needed"),
    "notify:endpoints": Row(get=CATALOG_READ, post="login 403 ok ok ok ok 403"),
    "notify:endpoint-detail": Row(kwargs=lambda w: {"endpoint_uuid": w.web_endpoint.uuid},
                                  get="login 403 ok ok 404 404 403", post="login 403 405 405 405 405 403",
                                  note="web's endpoint: its owner, web's editors and the security team"),
    "notify:endpoint-delete": Row(kwargs=lambda w: {"endpoint_uuid": w.web_endpoint.uuid},
                                  get="login 403 405 405 405 405 403", post="login 403 ok ok 404 404 403"),
    "notify:endpoint-enable": Row(kwargs=lambda w: {"endpoint_uuid": w.web_endpoint.uuid},
                                  get="login 403 405 405 405 405 403", post="login 403 ok ok 404 404 403"),
    "notify:delivery-redeliver": Row(kwargs=lambda w: {"endpoint_uuid": w.web_endpoint.uuid,
                                                       "delivery_uuid": w.web_delivery.uuid},
                                     get="login 403 405 405 405 405 403", post="login 403 ok ok 404 404 403"),
    "notify:sandbox-mail": Row(get="login in in in in in in", post=GET_ONLY,
                               note="the sandbox only (404 once deployed)"),
    # --- portal: audit (AUD) ---------------------------------------------------------------------
    "portal:audit-history": Row(get=AUDIT_READ, post="login 403 405 403 403 405 403"),
    "portal:audit-event": Row(kwargs=lambda w: {"event_hash": w.audit_event.hash},
                              get=AUDIT_READ, post="login 403 405 403 403 405 403"),
    "portal:audit-export": Row(get="login 403 403 403 403 405 403", post=AUDITOR_ONLY),
    "portal:audit-verify": Row(get=AUDITOR_ONLY, post=AUDITOR_ONLY),
    "portal:audit-checkpoint": Row(get="login 403 403 403 403 405 403", post=AUDITOR_ONLY),
    "portal:audit-provenance": Row(kwargs=lambda w: {"build_uuid": w.web_build.uuid},
                                   get=AUDIT_READ, post="login 403 405 403 403 405 403"),
    "portal:gold-history": Row(kwargs=lambda w: {"slug": w.gold.slug},
                               get=AUDIT_READ, post="login 403 405 403 403 405 403"),
    # --- builds: gold images ---------------------------------------------------------------------
    "builds:gold-list": Row(get=CATALOG_READ, post=GET_ONLY),
    "builds:gold-detail": Row(kwargs=lambda w: {"slug": w.gold.slug}, get=CATALOG_READ, post=GET_ONLY),
    "builds:gold-diff": Row(kwargs=lambda w: {"slug": w.gold.slug}, get=CATALOG_READ, post=GET_ONLY),
    "builds:gold-lineage": Row(kwargs=lambda w: {"slug": w.gold.slug}, get=CATALOG_READ, post=GET_ONLY),
    "builds:gold-artifacts-refresh": Row(kwargs=lambda w: {"slug": w.gold.slug}, get=POST_ONLY,
                                         post="login 403 ok 403 403 403 403",
                                         note="security only: reads the gallery image versions back"),
    "builds:gold-schedule": Row(kwargs=lambda w: {"slug": w.gold.slug}, get=POST_ONLY,
                                post="login 403 ok 403 403 403 403",
                                note="security only: sets the gold image's patch schedule (audited)"),
    "builds:gold-schedule-delete": Row(kwargs=lambda w: {"slug": w.gold.slug}, get=POST_ONLY,
                                       post="login 403 ok 403 403 403 403",
                                       note="security only: deletes the patch schedule (audited)"),
    "builds:gold-version": Row(kwargs=lambda w: {"slug": w.gold.slug, "version": w.published.version},
                               get=CATALOG_READ, post=GET_ONLY),
    "builds:gold-version-build": Row(kwargs=lambda w: {"slug": w.gold.slug, "version": w.published.version},
                                     get=POST_ONLY, post="login 403 ok ok ok 403 403",
                                     note="security: gold-only builds; editors: their department's"),
    "builds:gold-version-action": Row(
        kwargs=lambda w: {"slug": w.gold.slug, "version": w.published.version, "action": "deprecate"},
        get="login 403 ok 403 403 403 403", post="login 403 ok 403 403 403 403"),
    # --- builds: the gold version wizard (security only; drafts are hidden from editors) ---------
    "builds:wizard-start": Row(get="login 403 ok 403 403 403 403", post="login 403 ok 403 403 403 403"),
    "builds:wizard-new-version": Row(kwargs=lambda w: {"slug": w.gold.slug},
                                     get="login 403 ok 403 403 403 403", post="login 403 ok 403 403 403 403"),
    "builds:wizard-edit": Row(kwargs=lambda w: {"slug": w.gold.slug, "version": w.draft.version},
                              get="login 403 ok 404 404 403 403", post=GET_ONLY),
    "builds:wizard-lookup": Row(kwargs=lambda w: {"slug": w.gold.slug, "version": w.draft.version},
                                get="login 403 ok 404 404 403 403", post=GET_ONLY),
    "builds:wizard-step": Row(kwargs=lambda w: {"slug": w.gold.slug, "version": w.draft.version, "step": "source"},
                              get="login 403 ok 404 404 403 403", post="login 403 ok 404 404 403 403"),
    "builds:wizard-publish": Row(kwargs=lambda w: {"slug": w.gold.slug, "version": w.draft.version},
                                 get=POST_ONLY, post="login 403 ok 404 404 403 403"),
    # --- builds: layers (objects of web, bob's department) ---------------------------------------
    "builds:layer-list": Row(get=CATALOG_READ, post=GET_ONLY),
    "builds:layer-detail": Row(kwargs=lambda w: {"department": "web", "slug": w.web_layer.slug},
                               get=OWN_DEPARTMENT_READ, post=GET_ONLY),
    "builds:layer-version": Row(kwargs=lambda w: {"department": "web", "slug": w.web_layer.slug, "version": "1.0.0"},
                                get=OWN_DEPARTMENT_READ, post=GET_ONLY),
    "builds:layer-version-preview": Row(
        kwargs=lambda w: {"department": "web", "slug": w.web_layer.slug, "version": "1.0.0"},
        get=OWN_DEPARTMENT_READ, post=GET_ONLY),
    "builds:layer-version-check": Row(
        kwargs=lambda w: {"department": "web", "slug": w.web_layer.slug, "version": w.web_draft.version},
        get=OWN_DEPARTMENT_READ, post=GET_ONLY),
    "builds:layer-version-build": Row(
        kwargs=lambda w: {"department": "web", "slug": w.web_layer.slug, "version": "1.0.0"},
        get=POST_ONLY, post="login 403 403 ok 404 403 403", note="only the department's editors build with layers"),
    "builds:layer-create": Row(get="login 403 403 ok ok 403 403", post="login 403 403 ok ok 403 403"),
    "builds:layer-version-create": Row(kwargs=lambda w: {"department": "web", "slug": w.web_layer.slug},
                                       get="login 403 403 ok 404 403 403", post="login 403 403 ok 404 403 403"),
    "builds:layer-version-edit": Row(
        kwargs=lambda w: {"department": "web", "slug": w.web_layer.slug, "version": w.web_draft.version},
        get="login 403 403 ok 404 403 403", post="login 403 403 ok 404 403 403"),
    "builds:layer-version-publish": Row(
        kwargs=lambda w: {"department": "web", "slug": w.web_layer.slug, "version": w.web_draft.version},
        get=POST_ONLY, post="login 403 403 ok 404 403 403"),
    # --- builds: four-eyes publishing (web_request: bob's pending request for web_draft) ----------
    "builds:approval-list": Row(get=CATALOG_READ, post="login 403 405 405 405 405 403"),
    "builds:approval-report": Row(get=AUDIT_READ, post="login 403 405 403 403 405 403"),
    "builds:approval-detail": Row(kwargs=lambda w: {"request_uuid": w.web_request.uuid}, get=OWN_DEPARTMENT_READ,
                                  post=GET_ONLY),
    "builds:approval-decide": Row(kwargs=lambda w: {"request_uuid": w.web_request.uuid}, get=POST_ONLY,
                                  post="login 403 ok ok 404 403 403",
                                  note="who may decide is the approval policy's; an empty form changes nothing"),
    "builds:approval-withdraw": Row(kwargs=lambda w: {"request_uuid": w.web_request.uuid}, get=POST_ONLY,
                                    post="login 403 403 ok 404 403 403", note="only the author (bob) withdraws"),
    "builds:approval-promote": Row(kwargs=lambda w: {"slug": w.gold.slug, "version": w.published.version},
                                   get="login 403 ok 403 403 403 403", post="login 403 ok 403 403 403 403"),
    "builds:approval-break-glass": Row(kwargs=lambda w: {"slug": w.gold.slug, "version": w.draft.version},
                                       get=ADMIN_ONLY, post=ADMIN_ONLY, note="administrators only, with a reason"),
    # --- builds: builds (web_build belongs to web; the admin role reads every build) -------------
    "builds:build-list": Row(get=BUILD_READ, post=GET_ONLY),
    "builds:build-detail": Row(kwargs=lambda w: {"build_uuid": w.web_build.uuid}, get=BUILD_DEPARTMENT_READ,
                               post=GET_ONLY),
    "builds:build-status": Row(kwargs=lambda w: {"build_uuid": w.web_build.uuid}, get=BUILD_DEPARTMENT_READ,
                               post=GET_ONLY),
    "builds:build-log": Row(kwargs=lambda w: {"build_uuid": w.web_build.uuid}, get=BUILD_DEPARTMENT_READ,
                            post=GET_ONLY),
    "builds:build-log-tail": Row(kwargs=lambda w: {"build_uuid": w.web_build.uuid}, get=BUILD_DEPARTMENT_READ,
                                 post=GET_ONLY),
    "builds:build-log-download": Row(kwargs=lambda w: {"build_uuid": w.web_build.uuid},
                                     get="login 403 in in 404 in in", post=GET_ONLY,
                                     note="404 for readers when the build has no log"),
    "builds:build-template": Row(kwargs=lambda w: {"build_uuid": w.web_build.uuid}, get=BUILD_DEPARTMENT_READ,
                                 post=GET_ONLY),
    "builds:build-cancel": Row(kwargs=lambda w: {"build_uuid": w.web_build.uuid}, get=POST_ONLY,
                               post="login 403 ok ok 404 403 403",
                               note="web_build is healthy: the admin role cancels only a stuck build "
                                    "(tests/builds/test_views_builds.py)"),
    "builds:build-rebuild": Row(kwargs=lambda w: {"build_uuid": w.web_build.uuid}, get=POST_ONLY,
                                post="login 403 ok ok 404 403 403"),
    # --- builds: policy and template check -------------------------------------------------------
    "builds:policy": Row(get=CATALOG_READ, post="login 403 ok 403 403 403 403"),
    "builds:policy-named": Row(kwargs=lambda w: {"name": "default"}, get=CATALOG_READ,
                               post="login 403 ok 403 403 403 403"),
    "builds:checktemplate": Row(get=CATALOG_READ, post=CATALOG_READ),
    # --- the RQ dashboard (admin role only; the staff flag is not enough) ------------------------
    "django_rq:home": Row(get="login 403 403 403 403 403 in", post="login 403 403 403 403 403 in"),
    "django_rq:home_json": Row(get="login 403 403 403 403 403 in", post="login 403 403 403 403 403 in"),
    **{f"django_rq:{name}": Row(kwargs=lambda w, kwargs=kwargs: kwargs, get="login 403 403 403 403 403 in",
                                post="login 403 403 403 403 403 in")
       for name, kwargs in {
           "jobs": {"queue_index": 0}, "queue_details": {"queue_index": 0}, "finished_jobs": {"queue_index": 0},
           "failed_jobs": {"queue_index": 0}, "delete_failed_jobs": {"queue_index": 0},
           "scheduled_jobs": {"queue_index": 0}, "started_jobs": {"queue_index": 0},
           "deferred_jobs": {"queue_index": 0}, "clear": {"queue_index": 0}, "requeue_all": {"queue_index": 0},
           "job_detail": {"queue_index": 0, "job_id": "no-such-job"},
           "result_detail": {"queue_index": 0, "job_id": "no-such-job", "result_id": "1"},
           "delete_job": {"queue_index": 0, "job_id": "no-such-job"},
           "requeue_job": {"queue_index": 0, "job_id": "no-such-job"},
           "enqueue_job": {"queue_index": 0, "job_id": "no-such-job"},
           "stop_job": {"queue_index": 0, "job_id": "no-such-job"},
           "confirm_action": {"queue_index": 0}, "actions": {"queue_index": 0},
           "workers": {"queue_index": 0}, "worker_details": {"queue_index": 0, "key": "no-such-worker"},
           "scheduler_jobs": {"scheduler_index": 0},
           "cron_scheduler_detail": {"connection_index": 0, "scheduler_name": "no-such-scheduler"},
           "cron_job_detail": {"connection_index": 0, "scheduler_name": "no-such-scheduler",
                               "cron_job_name": "no-such-job"},
       }.items()},
    # --- api: the JSON API under /api/v1/ (api/); POSTs are empty forms, which the API
    # refuses with 415 once the caller is admitted (JSON only) -------------------------------------
    "api:gold-list": Row(get=API_CATALOG_READ, post=API_NO_METHOD),
    "api:gold-detail": Row(kwargs=lambda w: {"slug": w.gold.slug}, get=API_CATALOG_READ, post=API_NO_METHOD,
                           put=API_NO_METHOD, patch=API_NO_METHOD, delete=API_NO_METHOD),
    "api:gold-version": Row(kwargs=lambda w: {"slug": w.gold.slug, "version": w.published.version},
                            get=API_CATALOG_READ, post=API_NO_METHOD, delete=API_NO_METHOD),
    "api:gold-version-review": Row(kwargs=lambda w: {"slug": w.gold.slug, "version": w.published.version},
                                   get=API_CATALOG_READ, post=API_NO_METHOD),
    "api:layer-list": Row(get=API_CATALOG_READ, post=API_NO_METHOD),
    "api:layer-detail": Row(kwargs=lambda w: {"department": "web", "slug": w.web_layer.slug},
                            get=API_OWN_DEPARTMENT_READ, post=API_NO_METHOD),
    "api:layer-version": Row(kwargs=lambda w: {"department": "web", "slug": w.web_layer.slug, "version": "1.0.0"},
                             get=API_OWN_DEPARTMENT_READ, post=API_NO_METHOD, put=API_NO_METHOD,
                             delete=API_NO_METHOD),
    "api:build-list": Row(get="401 403 ok ok ok ok ok", post="401 403 ok ok ok 403 403", put=API_NO_METHOD,
                          delete=API_NO_METHOD, note="security and editors request builds"),
    "api:build-detail": Row(kwargs=lambda w: {"build_uuid": w.web_build.uuid}, get="401 403 ok ok 404 ok ok",
                            post=API_NO_METHOD, put=API_NO_METHOD, patch=API_NO_METHOD, delete=API_NO_METHOD),
    "api:build-log": Row(kwargs=lambda w: {"build_uuid": w.web_build.uuid}, get="401 403 in in 404 in in",
                         post=API_NO_METHOD, put=API_NO_METHOD, patch=API_NO_METHOD, delete=API_NO_METHOD,
                         note="404 for readers when the build has no log"),
    "api:build-cancel": Row(kwargs=lambda w: {"build_uuid": w.web_build.uuid}, get=API_NO_METHOD,
                            post="401 403 ok ok 404 403 403", note="the admin role cancels only a stuck build"),
    "api:notify-endpoint-list": Row(get=API_CATALOG_READ, post=API_CATALOG_READ),
    "api:notify-endpoint-detail": Row(kwargs=lambda w: {"endpoint_uuid": w.web_endpoint.uuid},
                                      get="401 403 ok ok 404 404 403", post=API_NO_METHOD,
                                      delete="401 403 ok ok 404 404 403"),
    "api:publish-request-list": Row(get=API_CATALOG_READ, post="401 403 ok ok ok 403 403"),
    "api:publish-request": Row(kwargs=lambda w: {"request_uuid": w.web_request.uuid}, get=API_OWN_DEPARTMENT_READ,
                               post=API_NO_METHOD),
    # bob made web_request: four eyes refuse his decisions, and only he withdraws it.
    "api:publish-request-approve": Row(kwargs=lambda w: {"request_uuid": w.web_request.uuid}, get=API_NO_METHOD,
                                       post="401 403 ok 403 404 403 403"),
    "api:publish-request-reject": Row(kwargs=lambda w: {"request_uuid": w.web_request.uuid}, get=API_NO_METHOD,
                                      post="401 403 ok 403 404 403 403"),
    "api:publish-request-withdraw": Row(kwargs=lambda w: {"request_uuid": w.web_request.uuid}, get=API_NO_METHOD,
                                        post="401 403 403 ok 404 403 403"),
    # Rollout pages: editors see rollouts with an entry of theirs (carol has data/tools); only the
    # security team plans and acts; the draft for web's legacy layer is bob's or alice's to prepare.
    "builds:rollout-list": Row(get=CATALOG_READ, post=GET_ONLY),
    "builds:rollout-create": Row(get=POST_ONLY, post="login 403 ok 403 403 403 403"),
    "builds:rollout-detail": Row(kwargs=lambda w: {"rollout_uuid": w.rollout.uuid}, get=CATALOG_READ, post=GET_ONLY),
    "builds:rollout-action": Row(kwargs=lambda w: {"rollout_uuid": w.rollout.uuid, "action": "start"},
                                 get=POST_ONLY, post="login 403 ok 403 403 403 403"),
    "builds:rollout-prepare-draft": Row(
        kwargs=lambda w: {"rollout_uuid": w.rollout.uuid, "item_id": w.web_needs_action.pk},
        get=POST_ONLY, post="login 403 ok ok 404 403 403"),
    # Rollouts: editors see those with an entry of theirs (carol has one: data/tools); only the
    # security team acts on them (erin, an admin without the security role, does not).
    "api:rollout-list": Row(get=API_CATALOG_READ, post="401 403 ok 403 403 403 403"),
    "api:rollout": Row(kwargs=lambda w: {"rollout_uuid": w.rollout.uuid}, get=API_CATALOG_READ, post=API_NO_METHOD),
    "api:rollout-pause": Row(kwargs=lambda w: {"rollout_uuid": w.rollout.uuid}, get=API_NO_METHOD,
                             post="401 403 ok 403 403 403 403"),
    "api:rollout-resume": Row(kwargs=lambda w: {"rollout_uuid": w.rollout.uuid}, get=API_NO_METHOD,
                              post="401 403 ok 403 403 403 403"),
    "api:rollout-cancel": Row(kwargs=lambda w: {"rollout_uuid": w.rollout.uuid}, get=API_NO_METHOD,
                              post="401 403 ok 403 403 403 403"),
    "api:template-check": Row(get=API_NO_METHOD, post=API_CATALOG_READ),
    "api:vm-size-list": Row(get=API_CATALOG_READ, post=API_NO_METHOD, note="400 without location counts as ok"),
    "api:audit-event-list": Row(get="401 403 ok 403 403 ok 403", post=API_NO_METHOD),
    "api:audit-export": Row(get=same("401"), post=same("401"),
                            note="API tokens only (tests/api/test_audit_events.py covers the roles)"),
    "api:openapi": Row(get="401 ok ok ok ok ok ok", post=API_NO_METHOD),
    "api:docs": Row(get="401 ok ok ok ok ok ok", post=API_NO_METHOD),
    # --- infrastructure --------------------------------------------------------------------------
    "healthz": Row(get=same("ok"), post=same("405")),
}


# --- Django admin: generated rows ---------------------------------------------------------------

ADMIN_SITE_PAGES = {"index", "login", "logout", "password_change", "password_change_done", "jsi18n",
                    "autocomplete", "view_on_site", "app_list"}
REFUSED = "403 403 403 403 403"  # sam, alice, bob, carol, dave


def admin_row(short: str, *, admitted: bool, kwargs: Callable[[Any], dict] | None = None) -> Row:
    """The row for an `admin:` URL name (`short` without the namespace): anonymous visitors are
    sent to sign in, every role but admin gets 403, and the admin role is admitted (`admitted`)
    to the site's own pages and to the models it administers (portal.admin_site.ADMIN_ROLE_MODELS)."""
    erin = "in" if admitted else "403"
    if short == "password_set":
        # The page a set-password link opens: public (its holder cannot sign in yet); the matrix's
        # made-up token gets the "this link does not work" page.
        return Row(kwargs=kwargs, get=same("ok"), post=same("ok"))
    if short == "auth_user_password_change":
        # Setting somebody's password: superusers only (the admin role gets an audited 403).
        return Row(kwargs=kwargs, get=f"login {REFUSED} 403", post=f"login {REFUSED} 403")
    if short == "auth_user_set_password_link":
        # The world's first user (alice) has a password: erin is shown why there is no link for
        # her, and refused if she asks for one anyway.
        return Row(kwargs=kwargs, get=f"login {REFUSED} in", post=f"login {REFUSED} 403")
    if short == "logout":
        # Anonymous visitors are sent to the admin index (which asks them to sign in); the admin
        # role signs out through the portal's sign-out.
        return Row(get=f"ok {REFUSED} 405", post=f"ok {REFUSED} login")
    if short == "autocomplete":
        # Django answers 403 to an autocomplete request without its app_label/model_name/field_name.
        return Row(get=f"login {REFUSED} 403", post=f"login {REFUSED} 405")
    return Row(kwargs=kwargs, get=f"login {REFUSED} {erin}", post=f"login {REFUSED} {erin}")
