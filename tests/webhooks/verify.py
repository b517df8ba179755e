"""Verifies one received webhook with the `standardwebhooks` package, an implementation
independent of optin's.

    verify.py REQUEST_JSON

REQUEST_JSON holds {"secret": "whsec_...", "headers": {name: value}, "body": "..."}.
Prints "pass" and exits 0 when the signature verifies (the package also checks that the
timestamp is within five minutes of now); prints "fail: <why>" and exits 1 otherwise.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        request = json.load(f)
    try:
        Webhook(request["secret"]).verify(request["body"], request["headers"])
    except WebhookVerificationError as e:
        print(f"fail: {e}")
        return 1
    print("pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
