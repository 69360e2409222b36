from django.urls import path  # noqa: F401 - patterns are added by the pages that need them

app_name = "builds"

urlpatterns: list = []

# Validation pages: the gold version wizard, department layer forms, the policy and the template check
# (builds/views_wizard.py, builds/views_layers.py, builds/views_checks.py).
from builds import views_checks, views_layers, views_wizard  # noqa: E402

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
