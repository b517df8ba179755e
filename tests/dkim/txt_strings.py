"""Reads a TXT record from a DNS zone-file line with dnslib, an implementation
independent of optin's, and sends it through DNS wire format and back.

    txt_strings.py 'NAME TTL IN TXT "…" "…"'

Prints the record's character-strings as a JSON list. Exits 1 when the line is not one
TXT record, or when a string cannot be put on the wire (more than 255 bytes).
"""
import json
import sys

from dnslib import QTYPE, RR, DNSRecord


def main() -> int:
    try:
        records = RR.fromZone(sys.argv[1])
        if len(records) != 1 or records[0].rtype != QTYPE.TXT:
            print(f"not one TXT record: {records}")
            return 1
        message = DNSRecord()
        message.add_answer(records[0])
        wire = message.pack()
    except Exception as error:  # dnslib refuses a string over 255 bytes with DNSError
        print(f"not a valid TXT record: {error}")
        return 1
    strings = DNSRecord.parse(wire).rr[0].rdata.data
    print(json.dumps([s.decode("ascii") for s in strings]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
