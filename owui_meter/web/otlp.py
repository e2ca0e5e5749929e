"""``POST /v1/traces``: OpenRouter Broadcast's OTLP/HTTP trace exports (METER_OTLP_TOKEN).

Protobuf (``application/x-protobuf``) or JSON (``application/json``), gzip or not. The answer is
what OTLP expects: 200 with an ExportTraceServiceResponse in the request's encoding (a partial
success counts the generation spans refused). A body that is not an export is a 400 with a JSON
error and stores nothing. What is read and billed: ``owui_meter/otlp.py``.
"""

from __future__ import annotations

from flask import Blueprint, request
from werkzeug.exceptions import UnsupportedMediaType

from .. import clock, otlp
from .access import require_otlp_token
from .params import meter

bp = Blueprint("otlp", __name__)

ENCODINGS = {"application/x-protobuf": otlp.PROTOBUF, "application/protobuf": otlp.PROTOBUF, "application/json": otlp.JSON}


@bp.post("/v1/traces")
@require_otlp_token
def traces():
    """Read an export and bill its generations (each once, see ``otlp.py``)."""
    encoding = ENCODINGS.get(request.mimetype)
    if encoding is None:
        raise UnsupportedMediaType("Content-Type must be application/x-protobuf or application/json")
    body = otlp.decompress(request.get_data(cache=False), request.headers.get("Content-Encoding"))
    reading = otlp.read(otlp.decode(body, encoding), clock.now_ms(), meter().settings.METER_MAX_ANSWER_USD)
    meter().broadcast.receive(reading.generations)
    payload, content_type = otlp.response(reading, encoding)
    return payload, 200, {"Content-Type": content_type}
