"""A DNS server for the MX check's tests, built on dnslib (not on the resolver under test).

Serves on a free UDP port of 127.0.0.1, prints the port on the first line of stdout, and
answers until its stdin closes:

    mx.test          MX 10 mail.mx.test. (and mail.mx.test A 192.0.2.25)
    a-only.test      A 192.0.2.1, no MX
    aaaa-only.test   AAAA 2001:db8::1, no MX
    null-mx.test     MX 0 . (RFC 7505)
    mailinator.com   MX 10 mail.mailinator.com. (a throw-away domain that receives mail)
    no-host.test     exists, holds nothing (NOERROR, empty)
    servfail.test    SERVFAIL
    *.wild.test      MX 10 mail.wild.test. (a new name each time: uncached lookups)
    anything else    NXDOMAIN

Each question is written to stderr as `QTYPE name`, so a test can count the queries.
"""
import sys

from dnslib import AAAA, MX, QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer

ZONE = {
    ("mx.test.", "MX"): [MX("mail.mx.test.", 10)],
    ("mail.mx.test.", "A"): [A("192.0.2.25")],
    ("a-only.test.", "A"): [A("192.0.2.1")],
    ("aaaa-only.test.", "AAAA"): [AAAA("2001:db8::1")],
    ("null-mx.test.", "MX"): [MX(".", 0)],
    ("mailinator.com.", "MX"): [MX("mail.mailinator.com.", 10)],
}
EXISTING = {name for name, _ in ZONE} | {"no-host.test."}


class Zone(BaseResolver):
    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).lower()
        qtype = QTYPE[request.q.qtype]
        print(f"{qtype} {name}", file=sys.stderr, flush=True)
        if name.endswith(".wild.test."):
            if qtype == "MX":
                reply.add_answer(RR(name, QTYPE.MX, rdata=MX("mail.wild.test.", 10), ttl=300))
        elif name == "servfail.test.":
            reply.header.rcode = RCODE.SERVFAIL
        elif name not in EXISTING:
            reply.header.rcode = RCODE.NXDOMAIN
        for rdata in ZONE.get((name, qtype), []):
            reply.add_answer(RR(name, QTYPE.reverse[qtype], rdata=rdata, ttl=300))
        return reply


if __name__ == "__main__":
    quiet = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    server = DNSServer(Zone(), port=0, address="127.0.0.1", logger=quiet)
    server.start_thread()
    print(server.server.server_address[1], flush=True)
    sys.stdin.read()
    server.stop()
