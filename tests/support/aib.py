"""Image Builder test helpers: template bodies that fit the emulator's seed, and a recorder of
the HTTP exchanges an SDK client makes (to check status codes and LRO headers)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from tests.support.emulator import LOCATION, RESOURCE_GROUP, SUBSCRIPTION_ID

IDENTITY_ID = (f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}/providers/"
               "Microsoft.ManagedIdentity/userAssignedIdentities/aib-builder")
GALLERY_ID = (f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/goldsmith-galleries/providers/Microsoft.Compute/"
              "galleries/goldsmith_gallery")
GEN2_DEFINITION = f"{GALLERY_ID}/images/ubuntu-gen2-tl"  # seeded with versions 0.1.2 .. 2.1.0
GEN1_DEFINITION = f"{GALLERY_ID}/images/ubuntu-gen1"
MANAGED_IMAGE_SOURCE = (f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}/providers/"
                        "Microsoft.Compute/images/ubuntu-2204-gen2-base")
JAMMY_GEN2 = {"type": "PlatformImage", "publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
              "sku": "22_04-lts-gen2", "version": "latest"}
JAMMY_GEN2_LATEST = "22.04.202411190"


def managed_image_id(name: str, resource_group: str = RESOURCE_GROUP) -> str:
    return (f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{resource_group}/providers/Microsoft.Compute/"
            f"images/{name}")


def shell(name: str = "install", *lines: str) -> dict:
    return {"type": "Shell", "name": name, "inline": list(lines) or ["echo hello"]}


def template_body(*, source: dict | None = None, customize: list | None = None,
                  distribute: list | None = None, location: str = LOCATION, **properties: Any) -> dict:
    """A valid template for the seeded catalog: Ubuntu 22.04 Gen2 -> a VHD, one Shell step."""
    return {
        "location": location,
        "tags": {"owner": "tests"},
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY_ID: {}}},
        "properties": {
            "source": copy.deepcopy(source or JAMMY_GEN2),
            "customize": customize if customize is not None else [shell()],
            "distribute": distribute if distribute is not None else [{"type": "VHD", "runOutputName": "vhd"}],
            **properties,
        },
    }


def gallery_target(run_output: str = "acg", definition: str = GEN2_DEFINITION, **extra: Any) -> dict:
    return {"type": "SharedImage", "runOutputName": run_output, "galleryImageId": definition, **extra}


def managed_target(run_output: str = "managed", name: str = "goldsmith-output", **extra: Any) -> dict:
    return {"type": "ManagedImage", "runOutputName": run_output, "imageId": managed_image_id(name),
            "location": LOCATION, **extra}


@dataclass
class Exchange:
    method: str
    url: str
    status: int
    headers: dict[str, str]


@dataclass
class Recorder:
    """A raw_response_hook that keeps every request/response pair a client makes:
    `emulator.imagebuilder_client(raw_response_hook=recorder)`."""

    exchanges: list[Exchange] = field(default_factory=list)

    def __call__(self, pipeline_response) -> None:
        http_request = pipeline_response.http_request
        http_response = pipeline_response.http_response
        self.exchanges.append(Exchange(http_request.method, http_request.url, http_response.status_code,
                                       dict(http_response.headers)))

    def first(self, method: str) -> Exchange:
        return next(e for e in self.exchanges if e.method == method)

    def clear(self) -> None:
        self.exchanges.clear()
