"""Microsoft.ManagedIdentity: user-assigned identities.

routes.py answers HTTP; backend.py (app.services["msi"]) holds the identities and derives their
principal and client ids, the ids Image Builder shows and role assignments name.
"""

from emulator.msi.backend import ManagedIdentities, identity_ids
from emulator.msi.routes import register

__all__ = ["ManagedIdentities", "identity_ids", "register"]
