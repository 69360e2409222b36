"""Shared fixtures: personas (one per role), the emulator (tests/support/emulator.py), Redis.

Personas: alice (security team), bob (editor in web), carol (editor in data: "another
department" for bob's objects), dave (auditor), erin (admin), sam (staff flag but no role);
for four-eyes publishing, frank (security team, alice's approver) and grace (editor in web,
bob's approver).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import factories

pytest_plugins = ["tests.support.emulator", "tests.support.azurite", "tests.support.workers", "tests.support.azcli"]


@pytest.fixture(autouse=True, scope="session")
def test_settings():
    """Session-wide test settings.

    Personas are made in almost every test: hash their passwords cheaply. And no test may reach
    the real Azure: unless a test asks for the emulator (`azure_emulator`), Azure calls go to a
    closed local port and fail at once, instead of waiting on DNS for login.microsoftonline.com.
    """
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.AZURE_ARM_ENDPOINT = "https://127.0.0.1:9"
    settings.AZURE_AUTHORITY_HOST = "https://127.0.0.1:9"
    # WhiteNoise warns on every request handler when STATIC_ROOT is missing (a fresh clone
    # has not run collectstatic); pages find their files through the finders in tests.
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)


@pytest.fixture
def web(db):
    return factories.make_department("web", "Web Platform")


@pytest.fixture
def data_dept(db):
    return factories.make_department("data", "Data Science")


@pytest.fixture
def alice(db):
    return factories.make_user("alice", role="security")


@pytest.fixture
def bob(web):
    return factories.make_user("bob", role="editor", department=web)


@pytest.fixture
def carol(data_dept):
    return factories.make_user("carol", role="editor", department=data_dept)


@pytest.fixture
def dave(db):
    return factories.make_user("dave", role="auditor")


@pytest.fixture
def erin(db):
    return factories.make_user("erin", role="admin")


@pytest.fixture
def frank(db):
    return factories.make_user("frank", role="security")


@pytest.fixture
def grace(web):
    return factories.make_user("grace", role="editor", department=web)


@pytest.fixture
def sam(db):
    return factories.make_user("sam", is_staff=True)
