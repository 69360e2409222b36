"""The URL matrix's API rows, called with Bearer tokens instead of sessions: a token must get
exactly what its user gets in the matrix (tests/portal/url_matrix.py), with one deliberate
difference: the audit export takes tokens only, so there the auditor is admitted."""

from __future__ import annotations

from django.db import transaction
from django.urls import reverse

from tests.api.conftest import client_with, token_of
from tests.portal.test_url_matrix import build_world, matches, named_patterns, personas  # noqa: F401
from tests.portal.url_matrix import PERSONAS, ROWS, Row

TOKEN_ONLY = {"api:audit-export": Row(get="401 403 403 403 403 ok 403", post="401 405 405 405 405 405 405")}


def test_tokens_get_the_matrix_s_outcomes(personas, azure_emulator):  # noqa: F811
    world = build_world(personas)
    clients = {"anonymous": client_with(None)}
    clients.update({name: client_with(token_of(user)) for name, user in personas.items()})
    api_names = sorted(name for name in named_patterns() if name.startswith("api:"))
    assert len(api_names) >= 14
    mismatches = []
    for name in api_names:
        row = TOKEN_ONLY.get(name, ROWS[name])
        url = reverse(name, kwargs=ROWS[name].kwargs(world) if ROWS[name].kwargs else None)
        for method, expected in row.expectations().items():
            for persona in PERSONAS:
                with transaction.atomic():
                    response = getattr(clients[persona], method)(url)
                    transaction.set_rollback(True)
                if not matches(expected[persona], response):
                    mismatches.append(f"{name} {method.upper()} as {persona}: expected {expected[persona]}, "
                                      f"got {response.status_code}")
    assert not mismatches, "\n".join(mismatches)
