"""Schemathesis hooks for .ci/schemathesis.sh: NDJSON (`POST /v1/imports`).

The spec describes an NDJSON body or answer as an array whose items are the lines.
Schemathesis has no serializer for `application/x-ndjson`, so these two hooks write a
generated array as one JSON value per line, and read an answer back into such an array
so that its lines are checked against the response schema.
"""

import json

import schemathesis

NDJSON = "application/x-ndjson"


@schemathesis.serializer(NDJSON)
def to_ndjson(ctx, value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, list):
        return b"".join(json.dumps(item).encode("utf-8") + b"\n" for item in value)
    # Negative cases may not be an array: send the value as a single line.
    return json.dumps(value).encode("utf-8") + b"\n"


@schemathesis.deserializer(NDJSON)
def from_ndjson(ctx, response):
    return [json.loads(line) for line in response.content.decode("utf-8").splitlines() if line.strip()]
