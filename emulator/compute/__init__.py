"""Microsoft.Compute, the image catalog: Marketplace images, galleries, managed images.

routes.py answers HTTP (and /_emulator/catalog/...); backend.py (app.services["compute"]) holds the state.
"""

from emulator.compute.backend import Compute
from emulator.compute.routes import register

__all__ = ["Compute", "register"]
