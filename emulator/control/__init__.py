"""The control API (/_emulator/...) and the shared middlewares.

routes.py answers HTTP; backend.py (app.services["control"]) holds the request log, faults,
denials, settings and the clock's persistence; middleware.py is the request pipeline's
request log, ARM headers, faults and authentication.
"""

from emulator.control.backend import Control
from emulator.control.routes import register

__all__ = ["Control", "register"]
