"""Drives optin with the vendors' own Python SDKs, as a user's integration would:
PyPI `hubspot-api-client` (its communication_preferences module is v3 only, so v4 goes
through plain `requests`, the SDK's own HTTP dependency) and `mailchimp-marketing`.

    python sdk_check.py BASE_URL ADMIN_KEY SEND_KEY

Prints each call and its result; exits non-zero at the first result that is not what
optin promises (an AssertionError or an unexpected exception).
"""

import hashlib
import json
import sys

import hubspot
import mailchimp_marketing
import requests
from hubspot.communication_preferences import PublicUpdateSubscriptionStatusRequest
from hubspot.communication_preferences.exceptions import ApiException
from mailchimp_marketing.api_client import ApiClientError

BASE, ADMIN_KEY, SEND_KEY = sys.argv[1:4]
TYPES = ["job-alerts", "blog-updates", "marketing", "event-info"]


def show(call, result):
    print(f"{call}\n  -> {result}", flush=True)


def md5(email):
    return hashlib.md5(email.lower().encode()).hexdigest()


# --- HubSpot v3, through the SDK -------------------------------------------------------------
admin = hubspot.Client.create(access_token=ADMIN_KEY, host=BASE)
sender = hubspot.Client.create(access_token=SEND_KEY, host=BASE)
prefs = admin.communication_preferences

page = sender.communication_preferences.definition_api.get_page()
show("hubspot definition_api.get_page()", [(d.id, d.name, d.purpose) for d in page.subscription_definitions])
assert [d.id for d in page.subscription_definitions] == TYPES
assert all(d.communication_method == "Email" and d.is_active for d in page.subscription_definitions)

email = "sdk.hubspot@example.com"
statuses = sender.communication_preferences.status_api.get_email_status(email)
show(f"hubspot status_api.get_email_status({email!r})", [(s.id, s.status) for s in statuses.subscription_statuses])
assert statuses.recipient == email
assert [s.status for s in statuses.subscription_statuses] == ["NOT_SUBSCRIBED"] * 4

subscribed = prefs.status_api.subscribe(
    PublicUpdateSubscriptionStatusRequest(
        email_address=email,
        subscription_id="blog-updates",
        legal_basis="CONSENT_WITH_NOTICE",
        legal_basis_explanation="Ticked 'Blog updates' on the webinar form, 2024-05-01",
    )
)
show("hubspot status_api.subscribe(blog-updates, CONSENT_WITH_NOTICE + explanation)", subscribed.to_dict())
assert subscribed.id == "blog-updates"
assert subscribed.status == "SUBSCRIBED"
assert subscribed.legal_basis == "CONSENT_WITH_NOTICE"
assert subscribed.source_of_status == "SUBSCRIPTION_STATUS"

asked = prefs.status_api.subscribe(
    PublicUpdateSubscriptionStatusRequest(email_address=email, subscription_id="marketing", legal_basis="CONSENT_WITH_NOTICE")
)
show("hubspot status_api.subscribe(marketing, CONSENT_WITH_NOTICE, no explanation)", asked.to_dict())
assert asked.status == "NOT_SUBSCRIBED", "without evidence optin asks the person first"

contract = prefs.status_api.subscribe(
    PublicUpdateSubscriptionStatusRequest(
        email_address=email, subscription_id="event-info", legal_basis="PERFORMANCE_OF_CONTRACT", legal_basis_explanation="Ticket holder"
    )
)
show("hubspot status_api.subscribe(event-info, PERFORMANCE_OF_CONTRACT)", contract.to_dict())
assert contract.status == "SUBSCRIBED" and contract.legal_basis == "PERFORMANCE_OF_CONTRACT"

statuses = prefs.status_api.get_email_status(email)
show(f"hubspot status_api.get_email_status({email!r})", [(s.id, s.status) for s in statuses.subscription_statuses])
assert [s.status for s in statuses.subscription_statuses] == ["NOT_SUBSCRIBED", "SUBSCRIBED", "NOT_SUBSCRIBED", "SUBSCRIBED"]

unsubscribed = prefs.status_api.unsubscribe(PublicUpdateSubscriptionStatusRequest(email_address=email, subscription_id="blog-updates"))
show("hubspot status_api.unsubscribe(blog-updates)", unsubscribed.to_dict())
assert unsubscribed.status == "NOT_SUBSCRIBED"

try:
    prefs.status_api.subscribe(PublicUpdateSubscriptionStatusRequest(email_address=email, subscription_id="event-info", legal_basis="NON_GDPR"))
    raise AssertionError("NON_GDPR was accepted")
except ApiException as error:
    body = json.loads(error.body)
    show("hubspot status_api.subscribe(legal_basis=NON_GDPR)", f"ApiException {error.status} {body}")
    assert error.status == 400 and body["status"] == "error" and body["category"] == "VALIDATION_ERROR"

try:
    sender.communication_preferences.status_api.unsubscribe(
        PublicUpdateSubscriptionStatusRequest(email_address=email, subscription_id="event-info")
    )
    raise AssertionError("a send key wrote")
except ApiException as error:
    show("hubspot status_api.unsubscribe() with a send key", f"ApiException {error.status} {json.loads(error.body)['category']}")
    assert error.status == 403

# --- HubSpot v4: not in hubspot-api-client's communication_preferences, so plain requests -----
assert not hasattr(prefs, "statuses_api"), "the SDK grew a v4 API: drive it through the SDK"
v4 = requests.Session()
v4.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
V4 = f"{BASE}/communication-preferences/v4"
v4_email = "sdk.v4@example.com"

answer = v4.post(
    f"{V4}/statuses/{v4_email}",
    params={"channel": "EMAIL"},
    json={"channel": "EMAIL", "statusState": "SUBSCRIBED", "subscriptionId": "job-alerts",
          "legalBasis": "LEGITIMATE_INTEREST_CLIENT", "legalBasisExplanation": "Applied for a job"},
)
show("v4 POST /statuses/{email} SUBSCRIBED", (answer.status_code, answer.json()))
assert answer.status_code == 200 and answer.json()["status"] == "COMPLETE"
assert answer.json()["results"][0]["status"] == "SUBSCRIBED"

answer = v4.get(f"{V4}/statuses/{v4_email}", params={"channel": "EMAIL"})
show("v4 GET /statuses/{email}", [(r["subscriptionId"], r["status"]) for r in answer.json()["results"]])
assert [r["status"] for r in answer.json()["results"]] == ["SUBSCRIBED", "NOT_SPECIFIED", "NOT_SPECIFIED", "NOT_SPECIFIED"]

answer = v4.post(
    f"{V4}/statuses/batch/write",
    json={"inputs": [{"subscriberIdString": f"sdk.batch{n}@example.com", "channel": "EMAIL", "statusState": "UNSUBSCRIBED",
                      "subscriptionId": "marketing"} for n in range(3)]},
)
show("v4 POST /statuses/batch/write (3 inputs)", (answer.status_code, [r["status"] for r in answer.json()["results"]]))
assert answer.status_code == 200 and [r["status"] for r in answer.json()["results"]] == ["UNSUBSCRIBED"] * 3

answer = v4.post(f"{V4}/statuses/batch/read", params={"channel": "EMAIL"}, json={"inputs": [v4_email, "sdk.batch0@example.com"]})
show("v4 POST /statuses/batch/read (2 inputs)", (answer.status_code, len(answer.json()["results"])))
assert answer.status_code == 200 and len(answer.json()["results"]) == 8

answer = v4.post(f"{V4}/statuses/{v4_email}/unsubscribe-all", params={"channel": "EMAIL"})
show("v4 POST /statuses/{email}/unsubscribe-all", [r["status"] for r in answer.json()["results"]])
assert [r["status"] for r in answer.json()["results"]] == ["UNSUBSCRIBED"] * 4
answer = v4.get(f"{V4}/statuses/{v4_email}/unsubscribe-all", params={"channel": "EMAIL"})
show("v4 GET /statuses/{email}/unsubscribe-all", answer.json()["results"])
assert answer.json()["results"][0]["status"] == "UNSUBSCRIBED"

answer = v4.post(f"{V4}/links/generate", json={"subscriberIdString": v4_email, "channel": "EMAIL", "subscriptionId": "job-alerts"})
show("v4 POST /links/generate", answer.json())
links = answer.json()
assert links["managePreferencesUrl"].startswith(f"{BASE}/manage/")
assert links["unsubscribeSingleUrl"].startswith(f"{BASE}/unsubscribe/")
assert "/preferences/" not in json.dumps(links)

answer = v4.get(f"{V4}/definitions")
show("v4 GET /definitions", [d["id"] for d in answer.json()["results"]])
assert [d["id"] for d in answer.json()["results"]] == TYPES

# --- Mailchimp Marketing, through the SDK ----------------------------------------------------
# The SDK has no host setting: its URL is https://<server>.api.mailchimp.com/3.0, and an
# empty `server` leaves the host alone. The key goes as the Basic password (user "user").
mailchimp = mailchimp_marketing.Client()
mailchimp.set_config({"api_key": ADMIN_KEY, "server": ""})
mailchimp.api_client.host = f"{BASE}/3.0"

lists = mailchimp.lists.get_all_lists()
show("mailchimp lists.get_all_lists()", [(l["id"], l["stats"]["member_count"]) for l in lists["lists"]])
assert [l["id"] for l in lists["lists"]] == TYPES and lists["total_items"] == 4

wp = "sdk.mailchimp@example.com"
member = mailchimp.lists.set_list_member("marketing", md5(wp), {"email_address": wp, "status_if_new": "pending"})
show("mailchimp lists.set_list_member(marketing, md5, status_if_new=pending)", member)
assert member["status"] == "pending" and member["id"] == md5(wp) and member["email_address"] == wp

member = mailchimp.lists.get_list_member("marketing", md5(wp))
show("mailchimp lists.get_list_member(marketing, md5)", member["status"])
assert member["status"] == "pending"

direct = "sdk.direct@example.com"
member = mailchimp.lists.add_list_member(
    "blog-updates",
    {"email_address": direct, "status": "subscribed",
     "marketing_permissions": [{"marketing_permission_id": "email", "enabled": True}],
     "ip_opt": "198.51.100.23", "timestamp_opt": "2024-05-01 10:00:00"},
)
show("mailchimp lists.add_list_member(blog-updates, subscribed with evidence)", member)
assert member["status"] == "subscribed"

member = mailchimp.lists.get_list_member("blog-updates", direct)
show("mailchimp lists.get_list_member(blog-updates, address)", member["status"])
assert member["status"] == "subscribed"

member = mailchimp.lists.update_list_member("blog-updates", md5(direct), {"status": "unsubscribed"})
show("mailchimp lists.update_list_member(blog-updates, md5, status=unsubscribed)", member["status"])
assert member["status"] == "unsubscribed"

lists = mailchimp.lists.get_all_lists()
counts = {l["id"]: l["stats"]["unsubscribe_count"] for l in lists["lists"]}
show("mailchimp lists.get_all_lists() unsubscribe counts", counts)
assert counts["blog-updates"] >= 1

try:
    mailchimp.lists.get_list_member("marketing", md5("nobody@example.com"))
    raise AssertionError("an unknown member was found")
except ApiClientError as error:
    body = json.loads(error.text)
    show("mailchimp lists.get_list_member(unknown md5)", f"ApiClientError {error.status_code} {body['title']}")
    assert error.status_code == 404 and body["title"] == "Resource Not Found"

try:
    mailchimp.lists.add_list_member("blog-updates", {"email_address": direct, "status": "subscribed"})
    raise AssertionError("an existing member was added twice")
except ApiClientError as error:
    body = json.loads(error.text)
    show("mailchimp lists.add_list_member(existing member)", f"ApiClientError {error.status_code} {body['title']}")
    assert error.status_code == 400 and body["title"] == "Member Exists"

reader = mailchimp_marketing.Client({"api_key": SEND_KEY, "server": ""})
reader.api_client.host = f"{BASE}/3.0"
try:
    reader.lists.update_list_member("blog-updates", md5(direct), {"status": "subscribed"})
    raise AssertionError("a send key wrote")
except ApiClientError as error:
    show("mailchimp lists.update_list_member() with a send key", f"ApiClientError {error.status_code}")
    assert error.status_code == 403

# --- One confirmation-request rule: a blocked address (blocked by the test beforehand) ---
blocked = "sdk.blocked@example.com"
try:
    prefs.status_api.subscribe(PublicUpdateSubscriptionStatusRequest(email_address=blocked, subscription_id="marketing"))
    raise AssertionError("a confirmation request reached a blocked address")
except ApiException as error:
    body = json.loads(error.body)
    show("hubspot status_api.subscribe(blocked address, no evidence)", f"ApiException {error.status} {body['category']}")
    assert error.status == 400 and body["category"] == "VALIDATION_ERROR"

try:
    mailchimp.lists.set_list_member("marketing", md5(blocked), {"email_address": blocked, "status_if_new": "pending"})
    raise AssertionError("a confirmation request reached a blocked address")
except ApiClientError as error:
    body = json.loads(error.text)
    show("mailchimp lists.set_list_member(blocked address, pending)", f"ApiClientError {error.status_code} {body['title']}")
    assert error.status_code == 400 and body["title"] == "Member In Compliance State"

print("sdk_check: every SDK call answered as expected")
