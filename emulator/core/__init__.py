"""What every service shares: the HTTP vocabulary (http), the App and its pipeline (pipeline),
paging, the clock, the JSON document store, TLS files and the HTTPS server.

The names most services need are re-exported here: `from emulator.core import ArmError, Request`.
"""

from emulator.core.http import RG, SUB, ArmError, Drop, Handler, Request, Response, Route, Router
from emulator.core.paging import PAGE_SIZE, page_size, skip_token

__all__ = ["PAGE_SIZE", "RG", "SUB", "ArmError", "Drop", "Handler", "Request", "Response", "Route", "Router",
           "page_size", "skip_token"]
