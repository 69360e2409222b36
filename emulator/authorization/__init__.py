"""Microsoft.Authorization: RBAC (role definitions, role assignments, has_permission) and Azure
Policy's deny effects (policy definitions and assignments).

routes.py answers HTTP (and /_emulator/authorization/..., /_emulator/policy/...); backend.py
(app.services["authorization"]) holds RBAC; policy.py (app.services["policy"]) holds policy;
roles.py is the built-in role data.
"""

from emulator.authorization.backend import Authorization
from emulator.authorization.policy import Policy
from emulator.authorization.routes import register

__all__ = ["Authorization", "Policy", "register"]
