"""optin's signup challenges checked with the ALTCHA project's own Python library.

    altcha_check.py solve CHALLENGE_URL        fetch a challenge from optin, solve it with
                                               altcha's solver, print the base64 payload
    altcha_check.py verify KEY_HEX PAYLOAD     altcha's verify_solution on a payload (made by
                                               optin's test solver); exit 1 when refused
    altcha_check.py make KEY_HEX MAX_NUMBER    a challenge made and solved by altcha alone,
                                               under optin's key, as a base64 payload

The key is the HMAC key optin derives for its challenges, in hex.
"""
import datetime
import json
import sys
import urllib.request

from altcha import (
    ChallengeOptionsV1,
    ChallengeV1,
    PayloadV1,
    create_challenge_v1,
    solve_challenge_v1,
    verify_solution_v1,
)


def payload_of(challenge, number):
    return PayloadV1(
        challenge.algorithm, challenge.challenge, number, challenge.salt, challenge.signature
    ).to_base64()


def solve(url):
    with urllib.request.urlopen(url, timeout=10) as answer:
        served = json.load(answer)
    challenge = ChallengeV1(
        served["algorithm"],
        served["challenge"],
        served["maxnumber"],
        served["salt"],
        served["signature"],
    )
    solution = solve_challenge_v1(challenge)
    if solution is None:
        sys.exit("altcha found no solution within maxnumber")
    print(payload_of(challenge, solution.number))


def verify(key_hex, payload):
    ok, error = verify_solution_v1(payload, bytes.fromhex(key_hex), check_expires=True)
    if not ok:
        sys.exit(f"altcha refused the payload: {error}")
    print("verified")


def make(key_hex, max_number):
    challenge = create_challenge_v1(
        ChallengeOptionsV1(
            hmac_key=bytes.fromhex(key_hex),
            max_number=int(max_number),
            expires=datetime.datetime.now(datetime.timezone.utc)
            + datetime.timedelta(minutes=5),
        )
    )
    solution = solve_challenge_v1(challenge)
    if solution is None:
        sys.exit("altcha could not solve its own challenge")
    print(payload_of(challenge, solution.number))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"solve": solve, "verify": verify, "make": make}[command](*args)
