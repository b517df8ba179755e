"""Schemathesis hooks for .ci/schemathesis.sh: NDJSON (`POST /v1/imports`) and HTML pages.

The spec describes an NDJSON body or answer as an array whose items are the lines.
Schemathesis has no serializer for `application/x-ndjson`, so these two hooks write a
generated array as one JSON value per line, and read an answer back into such an array
so that its lines are checked against the response schema.
"""

import json

import schemathesis

NDJSON = "application/x-ndjson"


def as_bytes(value):
    """A body given as text or bytes, as bytes; None for any other value."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return None


@schemathesis.serializer(NDJSON)
def to_ndjson(ctx, value):
    if value is None or as_bytes(value) is not None:
        return as_bytes(value)
    if isinstance(value, list):
        return b"".join(json.dumps(item).encode("utf-8") + b"\n" for item in value)
    # Negative cases may not be an array: send the value as a single line.
    return json.dumps(value).encode("utf-8") + b"\n"


# `POST /v1/feedback/message` takes one raw mail; the spec declares it a string.
@schemathesis.serializer("message/rfc822")
def to_mail(ctx, value):
    if value is None or as_bytes(value) is not None:
        return as_bytes(value)
    # Negative cases may not be a string: send their JSON text as the "mail".
    return json.dumps(value).encode("utf-8")


@schemathesis.deserializer(NDJSON)
def from_ndjson(ctx, response):
    # Only "\n" ends a line: JSON strings may hold U+0085 or U+2028 unescaped.
    lines = response.content.decode("utf-8").split("\n")
    return [json.loads(line) for line in lines if line.strip()]


@schemathesis.deserializer("text/html")
def from_html(ctx, response):
    # Pages are declared as `type: string`; reading them as text lets schemathesis check
    # that an HTML answer is where the spec says one is.
    return response.content.decode("utf-8")


# Stateful runs start from operations that schemathesis guesses will succeed, by their
# names. It reads `source.form_id` of POST /v1/signups as a reference to a "Form" that
# nothing creates, and so never starts from a signup. These two operations write a
# contact; the links from their answers then read, change, restrict, export and erase it.
STATEFUL_ROOTS = {"POST /v1/signups", "PUT /v1/contacts/{email}/subscriptions/{type}"}

try:
    from schemathesis.specs.openapi import stateful as _stateful

    _guess_root = _stateful.is_likely_root_transition

    def _is_root(operation, node, produced_anywhere):
        return operation.label in STATEFUL_ROOTS or _guess_root(operation, node, produced_anywhere)

    _stateful.is_likely_root_transition = _is_root
except (ImportError, AttributeError):  # another schemathesis version: keep its own guess
    pass
