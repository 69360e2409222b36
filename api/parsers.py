"""Request bodies: JSON only, and at most MAX_BODY_BYTES of it.

DRF reads the body as a stream, past Django's DATA_UPLOAD_MAX_MEMORY_SIZE check, so without a
bound of our own one request could make a web process hold any amount of JSON in memory. The
largest body the API takes is a template to check, bounded like the check page's form.
"""

from __future__ import annotations

import io

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_BODY_BYTES = 500_000


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = stream.read(MAX_BODY_BYTES + 1)
        if len(data) > MAX_BODY_BYTES:
            raise ParseError(f"The body is larger than {MAX_BODY_BYTES} bytes.")
        return super().parse(io.BytesIO(data), media_type, parser_context)
