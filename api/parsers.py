"""Request bodies: JSON only, at most MAX_BODY_BYTES of it, nested at most MAX_JSON_DEPTH deep.

Without a bound of our own one request could make a web process hold any amount of JSON in
memory: the largest body the API takes is a template to check, bounded like the check page's
form. Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) refuses larger declared bodies before the
parser runs; errors.exception_handler answers both 413 `request_too_large`.

Python's json module recurses once per level, so a body nested a thousand levels deep would
raise RecursionError (a 500); builds.jsonlimits measures the depth on the raw bytes first and
the body is refused 400 with the rule `request.too-deep`.
"""

from __future__ import annotations

import io

from rest_framework.parsers import JSONParser

from api.errors import ProblemsError, RequestTooLarge, problem
from builds import jsonlimits

MAX_BODY_BYTES = 500_000


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = stream.read(MAX_BODY_BYTES + 1)
        if len(data) > MAX_BODY_BYTES:
            raise RequestTooLarge(f"The body is larger than {MAX_BODY_BYTES} bytes.")
        if not jsonlimits.json_depth_ok(data):
            raise ProblemsError("The request is not valid.", [
                problem("request.too-deep", "", jsonlimits.TOO_DEEP_MESSAGE)])
        parsed = super().parse(io.BytesIO(data), media_type, parser_context)
        if jsonlimits.contains_nul(parsed):
            raise ProblemsError("The request is not valid.", [problem("request.nul", "", jsonlimits.NUL_MESSAGE)])
        return parsed
