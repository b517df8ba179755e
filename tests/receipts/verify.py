"""Checks an optin consent receipt the way a data protection officer would, with
libraries optin's authors did not write: jwcrypto verifies the JWS against the JWK Set
the service publishes, and PyLD expands the payload as JSON-LD.

    verify.py JWKS_FILE RECEIPT_FILE

Prints one JSON object and exits 0 when the signature verifies, 1 when it does not:
  verified       whether the signature verifies with the key the header's kid names
  error          why not (only when it does not)
  sha256         hex SHA-256 of the compact receipt, as the opt-in event records it
  header         the protected header
  payload        the verified payload
  types, properties, ids
                 every @type, property and @id IRI of the expanded JSON-LD
"""

import hashlib
import json
import sys

from jwcrypto import jwk, jws
from pyld import jsonld


def iris(node, types, properties, ids):
    if isinstance(node, list):
        for item in node:
            iris(item, types, properties, ids)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "@type":
                types.update(value if isinstance(value, list) else [value])
            elif key == "@id":
                ids.add(value)
            elif not key.startswith("@"):
                properties.add(key)
            iris(value, types, properties, ids)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        keys = jwk.JWKSet.from_json(f.read())
    with open(sys.argv[2]) as f:
        compact = f.read().strip()
    report = {"sha256": hashlib.sha256(compact.encode("ascii")).hexdigest()}
    token = jws.JWS()
    try:
        token.deserialize(compact)
        header = token.jose_header
        key = keys.get_key(header.get("kid"))
        if key is None:
            raise LookupError("no key with kid %r in the JWK Set" % header.get("kid"))
        token.verify(key, alg="EdDSA")
    except Exception as error:  # any failure is a verdict, not a crash
        report.update(verified=False, error="%s: %s" % (type(error).__name__, error))
        print(json.dumps(report))
        return 1
    payload = json.loads(token.payload)
    types, properties, ids = set(), set(), set()
    iris(jsonld.expand(payload), types, properties, ids)
    report.update(
        verified=True,
        header=header,
        payload=payload,
        types=sorted(types),
        properties=sorted(properties),
        ids=sorted(ids),
    )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
