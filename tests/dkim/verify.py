"""Verifies a DKIM-signed mail with dkimpy, an implementation independent of optin's.

    verify.py MESSAGE_FILE TXT_RECORD

The DNS lookup is answered with TXT_RECORD for whatever name the signature asks for, so no
network is needed. Prints the signature's h= list, then "pass" or "fail"; exits 0 on pass,
1 on fail, 2 when the message carries no signature.
"""
import sys

import dkim


def main() -> int:
    message_file, record = sys.argv[1], sys.argv[2].encode()
    with open(message_file, "rb") as f:
        message = f.read()
    asked = []

    def dnsfunc(name, timeout=5):
        asked.append(name)
        return record

    signature = next(
        (line for line in message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
         if line.lower().startswith(b"dkim-signature:")),
        None,
    )
    if signature is None:
        print("no DKIM-Signature header")
        return 2
    verifier = dkim.DKIM(message)
    try:
        ok = verifier.verify(dnsfunc=dnsfunc)
    except dkim.DKIMException as error:
        print(f"error={error}")
        ok = False
    fields = getattr(verifier, "signature_fields", {}) or {}
    for tag in (b"a", b"c", b"d", b"s"):
        print(tag.decode() + "=" + fields.get(tag, b"").decode())
    print("h=" + b":".join(getattr(verifier, "include_headers", ())).decode())
    print("asked=" + ",".join(n.decode() if isinstance(n, bytes) else n for n in asked))
    print("pass" if ok else "fail")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
