"""Microsoft.Resources, the ARM core: subscriptions and resource groups.

routes.py answers HTTP; backend.py (app.services["resources"]) holds the state.
"""

from emulator.resources.backend import DEFAULT_TENANT, Resources, normalize_location, require_api_version
from emulator.resources.routes import register

__all__ = ["DEFAULT_TENANT", "Resources", "normalize_location", "register", "require_api_version"]
