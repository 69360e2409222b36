"""Microsoft.Storage, as far as Image Builder's staging storage goes: the account in each staging
resource group and the build logs written into Azurite (azurite.py starts it, blobs.py talks to
it, backend.py is app.services["storage"], routes.py answers ARM)."""

from emulator.storage.backend import Storage
from emulator.storage.routes import register

__all__ = ["Storage", "register"]
