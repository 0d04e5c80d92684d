#!/usr/bin/env python3
"""Writes the ingest verifiers' vectors made with the providers' official Python libraries.

Every case is a request signed by the provider's library (or, for Telnyx, with PyNaCl, the
library Telnyx's SDK verifies with), then judged by that library's own verify function at a
fixed "now"; the fixture records the library's verdict, which Herald's verifier must repeat
(crates/herald-core/tests/ingest_vectors.rs). Secrets, keys, bodies and times are fixed, so
running this again writes identical files. Run through generate.sh, which installs the
pinned versions (requirements.txt).

Usage: generate.py OUT_DIR
"""

import base64
import json
import pathlib
import sys
from datetime import datetime, timezone
from importlib.metadata import version
from unittest import mock

# 2023-11-14T22:13:20Z: every signed timestamp is this, or a stated offset from it.
AT = 1_700_000_000
URL = "https://webhooks.example.com/in/in_vectors"
JSON_BODY = '{"id":"evt_1","type":"customer.created","data":{"object":{"name":"Zoë Ångström ✓"}}}'
OTHER_BODY = '{"id":"evt_1","type":"customer.deleted","data":{"object":{"name":"Zoë Ångström ✓"}}}'

# The types Svix signs for (Svix's `SvixConfig` source types); Herald verifies them as `svix`.
SVIX_SIGNED = [
    "svix", "beehiiv", "brex", "clerk", "guesty", "incident-io", "lithic", "nash", "open-ai",
    "pleo", "psi-fi", "render", "replicate", "resend", "safebase", "sardine", "stych",
]


class Fixture:
    """One provider's cases, written as OUT_DIR/<name>.json."""

    def __init__(self, name, types, packages, how):
        self.name = name
        self.types = types
        self.library = {f"{package} (PyPI)": version(package) for package in packages}
        self.how = how
        self.cases = []

    def add(self, name, *, expect, verdict, config, headers, body, now, method="POST", url=URL, **extra):
        # The generator states what it meant each case to be; a library that judges otherwise
        # stops it, so a fixture never records a case nobody understood.
        if verdict != expect:
            sys.exit(f"{self.name} / {name}: the library says {verdict}, the generator meant {expect}")
        self.cases.append({
            "name": name, "method": method, "url": url, "headers": dict(headers), "body": body,
            "config": config, "now": now, "verdict": verdict, **extra,
        })

    def write(self, out_dir):
        document = {
            "source": self.name, "types": self.types, "library": self.library, "how": self.how,
            "cases": self.cases,
        }
        path = pathlib.Path(out_dir) / f"{self.name}.json"
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


class FixedDatetime(datetime):
    """`datetime` whose `now` is the case's time (patched into a library's module)."""

    at = AT

    @classmethod
    def now(cls, tz=None):
        return datetime.fromtimestamp(cls.at, tz=tz or timezone.utc)


def stripe_fixture():
    import stripe

    secret = "whsec_herald_vectors_stripe_2023"
    old_secret = "whsec_herald_vectors_stripe_2022"

    def judge(header, body, key, now):
        with mock.patch("time.time", return_value=float(now)):
            try:
                stripe.WebhookSignature.verify_header(body, header, key, stripe.Webhook.DEFAULT_TOLERANCE)
                return "accepted"
            except stripe.SignatureVerificationError as error:
                message = str(error)
                if "tolerance" in message:
                    return "stale_timestamp"
                if "No signatures found matching" in message:
                    return "bad_signature"
                if "No Stripe-Signature header" in message:
                    return "missing_signature"
                return "refused"

    sign = stripe.WebhookSignature.generate_signature_header
    fixture = Fixture("stripe", ["stripe"], ["stripe"],
                      "signed with stripe.WebhookSignature.generate_signature_header, judged by "
                      "stripe.WebhookSignature.verify_header with Webhook.DEFAULT_TOLERANCE")

    def add(name, expect, header, body=JSON_BODY, key=secret, now=AT):
        headers = [] if header is None else [["Stripe-Signature", header]]
        fixture.add(name, expect=expect, verdict=judge(header, body, key, now),
                    config={"secret": key}, headers=headers, body=body, now=now)

    header = sign(JSON_BODY, secret, AT)
    add("signed", "accepted", header)
    add("five minutes old", "accepted", header, now=AT + 300)
    add("older than five minutes", "stale_timestamp", header, now=AT + 301)
    add("signed an hour ahead of the receiver's clock (only age is limited)", "accepted", header,
        now=AT - 3600)
    add("tampered body", "bad_signature", header, body=OTHER_BODY)
    add("another endpoint's secret", "bad_signature", header, key="whsec_someone_else")
    add("no header", "missing_signature", None)
    old = sign(JSON_BODY, old_secret, AT).split(",")[1]
    add("two v1 signatures while the secret rolls (new secret)", "accepted", f"{header},{old}")
    add("two v1 signatures while the secret rolls (old secret)", "accepted", f"{header},{old}",
        key=old_secret)
    add("a v0 signature beside v1, as in test mode", "accepted",
        f"{header},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39")
    add("only a v0 signature", "refused", header.replace("v1=", "v0="))
    add("no timestamp", "refused", header.split(",")[1])
    add("spaces after the commas", "refused", header.replace(",", ", "))
    add("upper-case hex", "bad_signature", header.split("v1=")[0] + "v1=" + header.split("v1=")[1].upper())
    add("a timestamp with a leading zero (signed as its number)", "accepted",
        header.replace(f"t={AT}", f"t=0{AT}"))
    return fixture


def svix_like(name, types, packages, webhook_class, prefix, how):
    """Svix and Standard Webhooks: the same scheme under `svix-*` or `webhook-*` headers."""
    from standardwebhooks import webhooks as standard_module

    secret = "whsec_" + base64.b64encode(bytes(range(1, 25))).decode()
    old_secret = "whsec_" + base64.b64encode(bytes(range(101, 125))).decode()
    padless_secret = "whsec_" + base64.b64encode(bytes(range(1, 33))).decode().rstrip("=")
    fixture = Fixture(name, types, packages, how)

    def judge(headers, body, key, now):
        FixedDatetime.at = now
        with mock.patch.object(standard_module, "datetime", FixedDatetime):
            try:
                webhook_class(key).verify(body, dict(headers))
                return "accepted"
            except Exception as error:  # both libraries raise WebhookVerificationError
                message = str(error)
                if "too old" in message or "too new" in message:
                    return "stale_timestamp"
                if "No matching signature" in message:
                    return "bad_signature"
                if "Missing required headers" in message:
                    return "missing_signature"
                return "refused"

    def signature(key, msg_id="msg_2Yb7mK1HVc4vN0qjD0X1ZlM9", at=AT, body=JSON_BODY):
        return webhook_class(key).sign(msg_id, datetime.fromtimestamp(at, tz=timezone.utc), body)

    def add(case, expect, signatures, *, body=JSON_BODY, key=secret, now=AT, timestamp=str(AT),
            header_prefix=prefix):
        headers = [
            [f"{header_prefix}-id", "msg_2Yb7mK1HVc4vN0qjD0X1ZlM9"],
            [f"{header_prefix}-timestamp", timestamp],
            [f"{header_prefix}-signature", signatures],
        ]
        if signatures is None:
            headers = headers[:2]
        fixture.add(case, expect=expect, verdict=judge(headers, body, key, now), config={"secret": key},
                    headers=headers, body=body, now=now)

    signed = signature(secret)
    add("signed", "accepted", signed)
    add("five minutes old", "accepted", signed, now=AT + 300)
    add("older than five minutes", "stale_timestamp", signed, now=AT + 301)
    add("more than five minutes ahead", "stale_timestamp", signed, now=AT - 301)
    add("tampered body", "bad_signature", signed, body=OTHER_BODY)
    add("another endpoint's secret", "bad_signature", signed, key=old_secret)
    add("no signature header", "missing_signature", None)
    add("two keys while the secret rotates (new)", "accepted", f"{signature(old_secret)} {signed}")
    add("two keys while the secret rotates (old)", "accepted", f"{signature(old_secret)} {signed}",
        key=old_secret)
    asymmetric = "v1a," + base64.b64encode(bytes(64)).decode()
    add("an asymmetric v1a signature before the v1 one", "accepted", f"{asymmetric} {signed}")
    add("only an asymmetric v1a signature", "bad_signature", asymmetric)
    add("a timestamp with a leading zero (signed as its number)", "accepted", signed, timestamp=f"0{AT}")
    add("the secret without its whsec_ prefix", "accepted", signed, key=secret.removeprefix("whsec_"))
    add("a 32-byte secret written without base64 padding", "accepted", signature(padless_secret),
        key=padless_secret)
    if prefix == "svix":
        add("webhook-* headers (the svix library reads both)", "accepted", signed, header_prefix="webhook")
    return fixture


def slack_fixture():
    from slack_sdk.signature import Clock, SignatureVerifier

    secret = "8f742231b10e8888abcd99yyyzzz85a5"

    class FixedClock(Clock):
        def __init__(self, at):
            self.at = at

        def now(self):
            return float(self.at)

    fixture = Fixture("slack", ["slack"], ["slack_sdk"],
                      "signed with slack_sdk.signature.SignatureVerifier.generate_signature, judged by "
                      "SignatureVerifier.is_valid_request (a yes or no: refusals carry no reason)")

    def add(case, expect, body, headers, key=secret, now=AT):
        verifier = SignatureVerifier(key, clock=FixedClock(now))
        verdict = "accepted" if verifier.is_valid_request(body, dict(headers)) else "refused"
        fixture.add(case, expect=expect, verdict=verdict, config={"secret": key}, headers=headers, body=body,
                    now=now)

    def signed(body, at=AT, key=secret):
        signature = SignatureVerifier(key).generate_signature(timestamp=str(at), body=body)
        return [["X-Slack-Request-Timestamp", str(at)], ["X-Slack-Signature", signature]]

    # The example of Slack's "Verifying requests from Slack" (a slash command), as in its SDK's tests.
    docs_body = (
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
        "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibI"
        "GlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    docs_headers = [
        ["X-Slack-Request-Timestamp", "1531420618"],
        ["X-Slack-Signature", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"],
    ]
    add("the documented example", "accepted", docs_body, docs_headers, now=1531420618)
    event = '{"token":"x","team_id":"T1","event":{"type":"app_mention","text":"héllo"},"type":"event_callback","event_id":"Ev1"}'
    add("signed event", "accepted", event, signed(event))
    add("signed form body", "accepted", docs_body, signed(docs_body))
    add("five minutes old", "accepted", event, signed(event), now=AT + 300)
    add("older than five minutes", "refused", event, signed(event), now=AT + 301)
    add("more than five minutes ahead", "refused", event, signed(event), now=AT - 301)
    add("tampered body", "refused", event.replace("héllo", "hello"), signed(event))
    add("another app's secret", "refused", event, signed(event), key="0000000000000000aaaaaaaaaaaaaaaa")
    add("no signature", "refused", event, signed(event)[:1])
    upper = signed(event)
    upper[1][1] = "v0=" + upper[1][1][3:].upper()
    add("upper-case hex", "refused", event, upper)
    return fixture


def hubspot_fixture():
    from hubspot.exceptions import InvalidSignatureTimestampError
    from hubspot.utils import signature as signature_module
    from hubspot.utils.signature import Signature

    secret = "a4d9bc6e-5c33-4a4e-9e4d-2c0d3b5c4f11"
    body = '[{"eventId":1701,"subscriptionId":20,"portalId":62515,"occurredAt":1700000000000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM"}]'
    timestamp = str(AT * 1000 + 123)
    fixture = Fixture("hubspot", ["hubspot"], ["hubspot-api-client"],
                      "signed with hubspot.utils.signature.Signature.get_signature (v3), judged by "
                      "Signature.is_valid (v3: a timestamp error means stale); the signed URI is the "
                      "URL with the characters HubSpot's docs list decoded, as HubSpot signs it")

    def judge(given, request_body, signed_uri, key, now, method, at):
        FixedDatetime.at = now
        with mock.patch.object(signature_module, "datetime", FixedDatetime):
            try:
                valid = Signature.is_valid(signature=given, client_secret=key, request_body=request_body,
                                           http_uri=signed_uri, http_method=method, signature_version="v3",
                                           timestamp=at)
                return "accepted" if valid else "bad_signature"
            except InvalidSignatureTimestampError:
                return "stale_timestamp"

    def add(case, expect, *, url=URL, signed_uri=URL, sent_body=body, key=secret, now=AT, method="POST",
            at=timestamp):
        given = Signature.get_signature(secret, body, "v3", http_uri=signed_uri, http_method=method,
                                        timestamp=timestamp)
        headers = [["X-HubSpot-Signature-v3", given], ["X-HubSpot-Request-Timestamp", at]]
        fixture.add(case, expect=expect, verdict=judge(given, sent_body, signed_uri, key, now, method, at),
                    config={"secret": key}, headers=headers, body=sent_body, now=now, method=method, url=url)

    add("signed", "accepted")
    add("299 seconds old", "accepted", now=AT + 299)
    add("five minutes old (HubSpot refuses from 300 seconds)", "stale_timestamp", now=AT + 300)
    add("signed an hour ahead of the receiver's clock (only age is limited)", "accepted", now=AT - 3600)
    add("tampered body", "bad_signature", sent_body=body.replace("1701", "1702"))
    add("another app's client secret", "bad_signature", key="00000000-0000-0000-0000-000000000000")
    query = URL + "?portal=62515&email=a@example.com&tags=(a,b)"
    add("a URL with a query, its reserved characters percent-encoded on the wire", "accepted",
        url=URL + "?portal=62515&email=a%40example.com&tags=%28a%2Cb%29", signed_uri=query)
    return fixture


def telnyx_fixture():
    import telnyx
    from nacl.signing import SigningKey

    key = SigningKey(bytes(range(32)))
    other = SigningKey(bytes(range(100, 132)))
    public = base64.b64encode(bytes(key.verify_key)).decode()
    body = '{"data":{"event_type":"call.initiated","id":"0ccc7b54-4df3-4bca-a65a-3da1ecc777f0","occurred_at":"2023-11-14T22:13:20.000000Z","payload":{"to":"+13129457420"},"record_type":"event"},"meta":{"attempt":1}}'
    client = telnyx.Telnyx(api_key="KEY_NOT_USED", base_url="http://127.0.0.1:9")
    fixture = Fixture("telnyx", ["telnyx"], ["telnyx", "PyNaCl"],
                      "signed with PyNaCl's ed25519 SigningKey over `timestamp|body` (Telnyx's scheme), "
                      "judged by telnyx.Telnyx().webhooks.unwrap")

    def judge(headers, sent_body, now, public_key):
        with mock.patch("time.time", return_value=float(now)):
            try:
                client.webhooks.unwrap(sent_body, headers=dict(headers), key=public_key)
                return "accepted"
            except ValueError as error:
                message = str(error)
                if "too old or too new" in message:
                    return "stale_timestamp"
                if "does not match" in message:
                    return "bad_signature"
                if "Missing required header" in message:
                    return "missing_signature"
                return "refused"

    def sign(signer, at=str(AT), signed_body=body):
        return base64.b64encode(signer.sign(f"{at}|{signed_body}".encode()).signature).decode()

    def add(case, expect, signature, *, sent_body=body, now=AT, public_key=public, at=str(AT)):
        headers = [["telnyx-timestamp", at]]
        if signature is not None:
            headers.append(["telnyx-signature-ed25519", signature])
        fixture.add(case, expect=expect, verdict=judge(headers, sent_body, now, public_key),
                    config={"publicKey": public_key}, headers=headers, body=sent_body, now=now)

    add("signed", "accepted", sign(key))
    add("five minutes old", "accepted", sign(key), now=AT + 300)
    add("older than five minutes", "stale_timestamp", sign(key), now=AT + 301)
    add("more than five minutes ahead", "stale_timestamp", sign(key), now=AT - 301)
    add("tampered body", "bad_signature", sign(key), sent_body=body.replace("+1312", "+1313"))
    add("signed by another key", "bad_signature", sign(other))
    add("no signature", "missing_signature", None)
    add("a signature that is not base64", "refused", "not base64!")
    return fixture


def main():
    out_dir = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent)
    out_dir.mkdir(parents=True, exist_ok=True)
    import standardwebhooks
    import svix

    fixtures = [
        stripe_fixture(),
        svix_like("svix", SVIX_SIGNED, ["svix", "standardwebhooks"], svix.Webhook, "svix",
                  "signed with svix.Webhook.sign, judged by svix.Webhook.verify"),
        svix_like("standard-webhooks", ["standard-webhooks"], ["standardwebhooks"],
                  standardwebhooks.Webhook, "webhook",
                  "signed with standardwebhooks.Webhook.sign, judged by standardwebhooks.Webhook.verify"),
        slack_fixture(),
        hubspot_fixture(),
        telnyx_fixture(),
    ]
    for fixture in fixtures:
        fixture.write(out_dir)


if __name__ == "__main__":
    main()
