"""Plain factory functions for tests: each makes one row with sensible defaults."""

from __future__ import annotations

import itertools

from django.contrib.auth import get_user_model

from builds import services
from builds.models import GoldImage, GoldImageVersion, Layer, LayerVersion
from portal.models import Department, Membership

_counter = itertools.count(1)
IDENTITY = ("/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/goldsmith-images/providers/"
            "Microsoft.ManagedIdentity/userAssignedIdentities/goldsmith-aib")
GALLERY = ("/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/goldsmith-galleries/providers/"
           "Microsoft.Compute/galleries/goldsmith_gallery/images/")


def make_user(username: str | None = None, *, role: str | None = None, department: Department | None = None,
              password: str = "pass-for-tests-1", **extra):
    user = get_user_model().objects.create_user(username=username or f"user{next(_counter)}", password=password,
                                                **extra)
    if role:
        Membership.objects.create(user=user, role=role, department=department)
    return user


def make_department(slug: str | None = None, name: str | None = None) -> Department:
    slug = slug or f"dept{next(_counter)}"
    return Department.objects.create(slug=slug, name=name or slug.title())


def linux_content(**overrides) -> dict:
    content = {
        "source": {"type": "PlatformImage", "publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
                   "sku": "22_04-lts-gen2", "version": "latest"},
        "security_type": "TrustedLaunch",
        "hyper_v_generation": "V2",
        "customize_before": [{"type": "Shell", "name": "update", "inline": ["sudo apt-get update"]}],
        "customize_after": [{"type": "Shell", "name": "audit", "inline": ["echo audit"]}],
        "distribute": [{"type": "SharedImage", "runOutputName": "gallery", "galleryImageId": GALLERY + "ubuntu-gen2-tl",
                        "targetRegions": [{"name": "eastus", "replicaCount": 1}]}],
        "identity": IDENTITY,
        "vm_profile": {"vmSize": "Standard_D2ds_v5"},
    }
    content.update(overrides)
    return content


def make_gold_image(slug: str | None = None, *, os_type: str = "Linux", actor=None) -> GoldImage:
    return services.gold_image_create(actor=actor or "system", slug=slug or f"gold{next(_counter)}",
                                      name="Test gold image", os_type=os_type)


def make_gold_version(gold_image: GoldImage | None = None, version: str = "1.0.0", *, publish: bool = True,
                      actor=None, **content) -> GoldImageVersion:
    gold_image = gold_image or make_gold_image(actor=actor)
    values = linux_content(**content)
    gold_version = services.gold_version_create(actor=actor or "system", gold_image=gold_image, version=version,
                                                **values)
    if publish:
        gold_version = services.gold_version_publish(actor=actor or "system", gold_version=gold_version, lookups=False)
    return gold_version


def make_layer(department: Department, gold_image: GoldImage, slug: str | None = None, *, actor=None) -> Layer:
    return services.layer_create(actor=actor or "system", department=department, gold_image=gold_image,
                                 slug=slug or f"layer{next(_counter)}", name="Test layer")


def make_layer_version(layer: Layer, version: str = "1.0.0", *, publish: bool = True, actor=None,
                       **content) -> LayerVersion:
    values = {"accepts": "*", "customize": [{"type": "Shell", "name": "app", "inline": ["echo app"]}]}
    values.update(content)
    layer_version = services.layer_version_create(actor=actor or "system", layer=layer, version=version, **values)
    if publish:
        layer_version = services.layer_version_publish(actor=actor or "system", layer_version=layer_version)
    return layer_version
