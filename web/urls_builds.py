from django.urls import path

from web import views_builds as views
from web import views_logs

app_name = "builds"

urlpatterns: list = [
    # Gold images (web/views_builds.py)
    path("gold/", views.gold_list, name="gold-list"),
    path("gold/<slug:slug>/", views.gold_detail, name="gold-detail"),
    path("gold/<slug:slug>/diff/", views.gold_diff, name="gold-diff"),
    path("gold/<slug:slug>/lineage/", views.gold_lineage, name="gold-lineage"),
    path("gold/<slug:slug>/v/<str:version>/", views.gold_version_detail, name="gold-version"),
    path("gold/<slug:slug>/v/<str:version>/build/", views.gold_version_build, name="gold-version-build"),
    path("gold/<slug:slug>/v/<str:version>/<str:action>/", views.gold_version_action, name="gold-version-action"),
    # Layers (web/views_builds.py; the edit forms are in web/views_layers.py)
    path("layers/", views.layer_list, name="layer-list"),
    path("layers/<slug:department>/<slug:slug>/", views.layer_detail, name="layer-detail"),
    path("layers/<slug:department>/<slug:slug>/v/<str:version>/", views.layer_version_detail, name="layer-version"),
    path("layers/<slug:department>/<slug:slug>/v/<str:version>/preview/", views.layer_version_preview,
         name="layer-version-preview"),
    path("layers/<slug:department>/<slug:slug>/v/<str:version>/build/", views.layer_version_build,
         name="layer-version-build"),
    # Builds (web/views_builds.py)
    path("builds/", views.build_list, name="build-list"),
    path("builds/<uuid:build_uuid>/", views.build_detail, name="build-detail"),
    path("builds/<uuid:build_uuid>/status/", views.build_status, name="build-status"),
    path("builds/<uuid:build_uuid>/log/", views_logs.build_log, name="build-log"),
    path("builds/<uuid:build_uuid>/log/tail/", views_logs.build_log_tail, name="build-log-tail"),
    path("builds/<uuid:build_uuid>/log/download/", views_logs.build_log_download, name="build-log-download"),
    path("builds/<uuid:build_uuid>/template.json", views.build_template, name="build-template"),
    path("builds/<uuid:build_uuid>/cancel/", views.build_cancel, name="build-cancel"),
    path("builds/<uuid:build_uuid>/rebuild/", views.build_rebuild, name="build-rebuild"),
]

# Validation pages: the gold version wizard, department layer forms, the policy and the template check
# (web/views_wizard.py, web/views_layers.py, web/views_checks.py).
from web import views_checks, views_layers, views_wizard  # noqa: E402

urlpatterns += [
    path("wizard/", views_wizard.wizard_start, name="wizard-start"),
    path("wizard/<slug:slug>/new/", views_wizard.wizard_new_version, name="wizard-new-version"),
    path("wizard/<slug:slug>/<str:version>/", views_wizard.wizard_edit, name="wizard-edit"),
    path("wizard/<slug:slug>/<str:version>/lookup/", views_wizard.wizard_lookup, name="wizard-lookup"),
    path("wizard/<slug:slug>/<str:version>/publish/", views_wizard.wizard_publish, name="wizard-publish"),
    path("wizard/<slug:slug>/<str:version>/<slug:step>/", views_wizard.wizard_step, name="wizard-step"),
    path("layers/new/", views_layers.layer_create, name="layer-create"),
    path("layers/<slug:department>/<slug:slug>/new/", views_layers.layer_version_create, name="layer-version-create"),
    path("layers/<slug:department>/<slug:slug>/v/<str:version>/edit/", views_layers.layer_version_edit,
         name="layer-version-edit"),
    path("layers/<slug:department>/<slug:slug>/v/<str:version>/check/", views_layers.layer_version_check,
         name="layer-version-check"),
    path("layers/<slug:department>/<slug:slug>/v/<str:version>/publish/", views_layers.layer_version_publish,
         name="layer-version-publish"),
    path("policy/", views_checks.policy_page, name="policy"),
    path("policy/<slug:name>/", views_checks.policy_page, name="policy-named"),
    path("check/", views_checks.checktemplate_page, name="checktemplate"),
]

# Four-eyes publishing, channel promotions, break-glass and the approvals report (web/views_approvals.py).
from web import views_approvals  # noqa: E402

urlpatterns += [
    path("approvals/", views_approvals.approval_list, name="approval-list"),
    path("approvals/report/", views_approvals.approval_report, name="approval-report"),
    path("approvals/<uuid:request_uuid>/", views_approvals.approval_detail, name="approval-detail"),
    path("approvals/<uuid:request_uuid>/decide/", views_approvals.approval_decide, name="approval-decide"),
    path("approvals/<uuid:request_uuid>/withdraw/", views_approvals.approval_withdraw, name="approval-withdraw"),
    path("approvals/promote/<slug:slug>/<str:version>/", views_approvals.approval_promote, name="approval-promote"),
    path("approvals/break-glass/<slug:slug>/<str:version>/", views_approvals.approval_break_glass,
         name="approval-break-glass"),
    # "Refresh from Azure" on the lineage and gold image pages (the artifacts' state, read back).
    path("gold/<slug:slug>/artifacts/refresh/", views_approvals.artifacts_refresh, name="gold-artifacts-refresh"),
]

# Patch schedules (web/views_schedules.py).
from web import views_schedules  # noqa: E402

urlpatterns += [
    path("gold/<slug:slug>/schedule/", views_schedules.schedule_set, name="gold-schedule"),
    path("gold/<slug:slug>/schedule/delete/", views_schedules.schedule_delete, name="gold-schedule-delete"),
]

# Rollouts (web/views_rollouts.py).
from web import views_rollouts  # noqa: E402

urlpatterns += [
    path("rollouts/", views_rollouts.rollout_list, name="rollout-list"),
    path("rollouts/new/", views_rollouts.rollout_create, name="rollout-create"),
    path("rollouts/<uuid:rollout_uuid>/", views_rollouts.rollout_detail, name="rollout-detail"),
    path("rollouts/<uuid:rollout_uuid>/items/<int:item_id>/draft/", views_rollouts.rollout_prepare_draft,
         name="rollout-prepare-draft"),
    path("rollouts/<uuid:rollout_uuid>/<str:action>/", views_rollouts.rollout_action, name="rollout-action"),
]
