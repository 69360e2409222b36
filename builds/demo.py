"""Demo data for `make run`: people, departments, two published gold images and a layer each.

The entries match the emulator's seed catalog (emulator/seed.json), so demo builds succeed
against it out of the box. `seed_demo` is idempotent: it creates what is missing and leaves
what exists alone, so running it on every `make run` is safe.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from builds import services
from builds.models import GoldImage, Layer, LayerVersion
from portal.entra import default_role_mappings
from portal.models import Department, Membership

DEMO_PASSWORD = "goldsmith-demo"
DEPARTMENTS = [("web", "Web Platform"), ("data", "Data Science")]
DEMO_USERS = [
    {"username": "alice", "password": DEMO_PASSWORD, "role": "security", "department": "", "name": "Alice Security"},
    {"username": "bob", "password": DEMO_PASSWORD, "role": "editor", "department": "web", "name": "Bob Web"},
    {"username": "carol", "password": DEMO_PASSWORD, "role": "editor", "department": "data", "name": "Carol Data"},
    {"username": "dave", "password": DEMO_PASSWORD, "role": "auditor", "department": "", "name": "Dave Auditor"},
    {"username": "erin", "password": DEMO_PASSWORD, "role": "admin", "department": "", "name": "Erin Admin"},
    # Second pairs of eyes: frank approves alice's gold versions, grace bob's layers.
    {"username": "frank", "password": DEMO_PASSWORD, "role": "security", "department": "", "name": "Frank Security"},
    {"username": "grace", "password": DEMO_PASSWORD, "role": "editor", "department": "web", "name": "Grace Web"},
]

GALLERY_RESOURCE_GROUP = "goldsmith-galleries"
GALLERY = "goldsmith_gallery"


def gallery_image_id(definition: str) -> str:
    return (f"/subscriptions/{settings.AZURE_SUBSCRIPTION_ID}/resourceGroups/{GALLERY_RESOURCE_GROUP}"
            f"/providers/Microsoft.Compute/galleries/{GALLERY}/images/{definition}")


def _linux_baseline() -> dict:
    return {
        "source": {"type": "PlatformImage", "publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
                   "sku": "22_04-lts-gen2", "version": "latest"},
        "security_type": "TrustedLaunch",
        "hyper_v_generation": "V2",
        "customize_before": [
            {"type": "Shell", "name": "patch", "inline": ["sudo apt-get update", "sudo apt-get -y upgrade"]},
            {"type": "Shell", "name": "harden-ssh",
             "inline": ["sudo sed -i 's/^#\\?PermitRootLogin.*/PermitRootLogin no/' /etc/ssh/sshd_config"]},
        ],
        "customize_after": [
            {"type": "Shell", "name": "cis-audit", "inline": ["echo 'CIS level 1 checks passed'"]},
        ],
        "validators_after": [
            {"type": "Shell", "name": "ssh-root-disabled", "inline": ["grep -q '^PermitRootLogin no' /etc/ssh/sshd_config"]},
        ],
        "distribute": [
            {"type": "SharedImage", "runOutputName": "ubuntu-gallery", "galleryImageId": gallery_image_id("ubuntu-gen2-tl"),
             "targetRegions": [{"name": settings.AZURE_LOCATION, "replicaCount": 1, "storageAccountType": "Standard_LRS"}],
             "versioning": {"scheme": "Latest", "major": 1}},
        ],
        "vm_profile": {"vmSize": "Standard_D2ds_v5", "osDiskSizeGB": 64},
        "identity": settings.AZURE_TEMPLATE_IDENTITY,
        "build_timeout_minutes": 90,
        "tags": {"owner": "security-team"},
    }


def _windows_baseline() -> dict:
    return {
        "source": {"type": "PlatformImage", "publisher": "MicrosoftWindowsServer", "offer": "WindowsServer",
                   "sku": "2022-datacenter-azure-edition", "version": "latest"},
        "security_type": "TrustedLaunch",
        "hyper_v_generation": "V2",
        "customize_before": [
            {"type": "PowerShell", "name": "baseline-policies", "runElevated": True,
             "inline": ["Set-MpPreference -DisableRealtimeMonitoring $false", "Set-NetFirewallProfile -Enabled True"]},
            {"type": "WindowsRestart", "restartTimeout": "10m"},
        ],
        "customize_after": [
            {"type": "WindowsUpdate", "searchCriteria": "IsInstalled=0", "filters": ["include:$true"], "updateLimit": 40},
        ],
        "distribute": [
            {"type": "SharedImage", "runOutputName": "win2022-gallery", "galleryImageId": gallery_image_id("win2022-tl"),
             "targetRegions": [{"name": settings.AZURE_LOCATION, "replicaCount": 1}]},
        ],
        "vm_profile": {"vmSize": "Standard_D4ds_v5", "osDiskSizeGB": 128},
        "identity": settings.AZURE_TEMPLATE_IDENTITY,
        "build_timeout_minutes": 180,
        "tags": {"owner": "security-team"},
    }


GOLD_IMAGES = [
    ("ubuntu-2204-base", "Ubuntu 22.04 baseline", "Linux", "Hardened Ubuntu 22.04 LTS, Gen2, Trusted Launch capable.",
     _linux_baseline),
    ("windows-2022-base", "Windows Server 2022 baseline", "Windows",
     "Windows Server 2022 Datacenter Azure Edition with the security baseline and updates.", _windows_baseline),
]
LAYERS = [
    ("web", "nginx", "NGINX web server", "ubuntu-2204-base", {
        "accepts": "^1.0",
        "customize": [{"type": "Shell", "name": "install-nginx",
                       "inline": ["sudo apt-get install -y nginx", "sudo systemctl enable nginx"]}],
        "validators": [{"type": "Shell", "name": "nginx-enabled", "inline": ["systemctl is-enabled nginx"]}],
        "tags": {"department": "web"},
    }),
    ("data", "sql-tools", "SQL Server tools", "windows-2022-base", {
        "accepts": "^1.0",
        "customize": [{"type": "PowerShell", "name": "install-sqlcmd", "runElevated": True,
                       "inline": ["winget install --id Microsoft.Sqlcmd --silent --accept-source-agreements"]}],
        "tags": {"department": "data"},
    }),
]


@transaction.atomic
def seed_demo() -> list[str]:
    """Create the demo data that is missing; return a line per thing created."""
    created: list[str] = []
    departments = {}
    for slug, name in DEPARTMENTS:
        departments[slug], made = Department.objects.get_or_create(slug=slug, defaults={"name": name})
        if made:
            created.append(f"department {slug}")
    users = {}
    User = get_user_model()
    for person in DEMO_USERS:
        first, _, last = person["name"].partition(" ")
        user, made = User.objects.get_or_create(username=person["username"],
                                                defaults={"first_name": first, "last_name": last,
                                                          "email": f"{person['username']}@contoso.example"})
        if made:
            user.set_password(person["password"])
            user.save()
            created.append(f"user {user.username}")
        Membership.objects.get_or_create(user=user, role=person["role"],
                                         department=departments.get(person["department"]))
        users.setdefault(person["role"], user)  # the first of each role (alice, bob) makes the demo data
    security = users["security"]
    for slug, name, os_type, description, content in GOLD_IMAGES:
        image = GoldImage.objects.filter(slug=slug).first()
        if image is None:
            image = services.gold_image_create(actor=security, slug=slug, name=name, os_type=os_type,
                                               description=description)
            created.append(f"gold image {slug}")
        if not image.versions.exists():
            version = services.gold_version_create(actor=security, gold_image=image, version="1.0.0", **content())
            # Bootstrap data: published directly (no request), as if approved before Goldsmith ran;
            # the seed runs before (or without) Azure, so without catalog look-ups.
            services.gold_version_publish(actor=security, gold_version=version, reason="demo baseline",
                                          lookups=False)
            created.append(f"gold image version {version}")
    for department, slug, name, gold_slug, content in LAYERS:
        layer = Layer.objects.filter(department=departments[department], slug=slug).first()
        editor = User.objects.get(username=next(p["username"] for p in DEMO_USERS if p["department"] == department))
        if layer is None:
            layer = services.layer_create(actor=editor, department=departments[department],
                                          gold_image=GoldImage.objects.get(slug=gold_slug), slug=slug, name=name)
            created.append(f"layer {layer}")
        if not LayerVersion.objects.filter(layer=layer).exists():
            layer_version = services.layer_version_create(actor=editor, layer=layer, version="1.0.0", **content)
            services.layer_version_publish(actor=editor, layer_version=layer_version)
            created.append(f"layer version {layer_version}")
    # The Entra ID app roles of the emulator's seeded users, mapped to these departments.
    created += default_role_mappings()
    return created
