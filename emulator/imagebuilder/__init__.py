"""Microsoft.VirtualMachineImages (Azure VM Image Builder).

routes.py answers HTTP (and /_emulator/imagebuilder/..., the build-log blobs); backend.py
(app.services["imagebuilder"]) holds templates, runs and operations; schema.py validates
request bodies; builds.py plans runs and writes their logs (pure).
"""

from emulator.imagebuilder.backend import TEMPLATE_TYPE, ImageBuilder, normalize_location
from emulator.imagebuilder.routes import register

__all__ = ["TEMPLATE_TYPE", "ImageBuilder", "normalize_location", "register"]
