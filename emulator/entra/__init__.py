"""Entra ID, the login host: discovery, JWKS, tokens, the sign-in page, ARM's token check.

routes.py registers the routes (and /_emulator/users, principals, entra/...); backend.py
(app.services["entra"]) holds keys, users and principals and verifies bearer tokens;
tokens.py is the token endpoint and signin.py the authorize endpoint with its page.
"""

from emulator.entra.backend import Entra
from emulator.entra.routes import register

__all__ = ["Entra", "register"]
