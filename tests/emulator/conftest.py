"""Fixtures shared by the emulator tests that talk raw REST (azure-mgmt-authorization,
azure-mgmt-msi and the policy client are not installed): `arm`, a requests session with the
worker's bearer token aimed at the emulator."""

from __future__ import annotations

import pytest
import requests

from tests.support.emulator import ARM_SCOPE


class Arm:
    """ARM calls with the worker's token: arm.get("/subscriptions/...", api_version="2022-04-01")."""

    def __init__(self, emulator):
        self.emulator = emulator
        self.http = requests.Session()
        self.http.verify = str(emulator.ca_path)
        self.http.trust_env = False
        token = emulator.credential().get_token(ARM_SCOPE).token
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, api_version: str, json=None, **params) -> requests.Response:
        return self.http.request(method, self.emulator.url(path), params={"api-version": api_version, **params},
                                 json=json, timeout=30)

    def get(self, path: str, api_version: str, **params) -> requests.Response:
        return self.call("GET", path, api_version, **params)

    def put(self, path: str, api_version: str, json=None) -> requests.Response:
        return self.call("PUT", path, api_version, json=json or {})

    def delete(self, path: str, api_version: str) -> requests.Response:
        return self.call("DELETE", path, api_version)


@pytest.fixture
def arm(emulator) -> Arm:
    return Arm(emulator)
