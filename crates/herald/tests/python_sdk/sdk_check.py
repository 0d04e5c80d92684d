"""Exercises Herald through the official Svix Python SDK (an independent client).

Usage: sdk_check.py SERVER_URL TOKEN. Starts a receiver on 127.0.0.1 (the server must allow
deliveries to loopback), prints "python svix sdk: ok" when every check passed. Runs with the
SDK 2.x and 1.x, whose models and method names differ where noted.
"""
import http.server
import json
import sys
import threading
import time

import svix as svix_package
from svix.api import (
    ApplicationIn,
    EndpointHeadersIn,
    EndpointIn,
    EndpointPatch,
    EventTypeIn,
    MessageAttemptListByMsgOptions,
    MessageIn,
    Svix,
    SvixOptions,
)
from svix.webhooks import Webhook

url, token = sys.argv[1], sys.argv[2]
sdk_major = int(svix_package.__version__.split(".")[0])
if sdk_major >= 2:
    from svix.api import EndpointUpsertIn as EndpointPut
else:
    from svix.api import EndpointUpdate as EndpointPut
received = []


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        received.append((dict(self.headers), body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
hook = f"http://127.0.0.1:{server.server_address[1]}/hook"

svix = Svix(token, SvixOptions(server_url=url))
app = svix.application.create(ApplicationIn(name="Python", uid="py-app"))
assert app.uid == "py-app", app
assert svix.application.get("py-app").id == app.id
svix.event_type.create(EventTypeIn(name="order.created", description="An order"))
ep = svix.endpoint.create(app.id, EndpointIn(url=hook, filter_types=["order.created"], description="py"))
secret = svix.endpoint.get_secret(app.id, ep.id).key
put = EndpointPut(url=hook, description="updated", filter_types=["order.created"])
# 2.x calls PUT `upsert`, 1.x `update`; both parse the answer into EndpointOut.
ep2 = svix.endpoint.upsert(app.id, ep.id, put) if sdk_major >= 2 else svix.endpoint.update(app.id, ep.id, put)
if sdk_major < 2:
    # 1.x requires `version` and reads the event types as `filterTypes`.
    assert ep.version == 1 and ep2.filter_types == ["order.created"], ep2
# Header names keep the case they were given (lookups ignore it), as in Svix.
headers_in = EndpointHeadersIn(headers={"X-Tenant": "acme"})
(svix.endpoint.set_headers if sdk_major >= 2 else svix.endpoint.update_headers)(app.id, ep.id, headers_in)
assert svix.endpoint.get_headers(app.id, ep.id).headers == {"X-Tenant": "acme"}
ep3 = svix.endpoint.patch(app.id, ep.id, EndpointPatch(description="patched"))
assert ep3.description == "patched" and ep3.url == hook, ep3
stats = svix.endpoint.get_stats(app.id, ep.id)
assert stats.fail == 0, stats
assert ep2.description == "updated"
msg = svix.message.create(app.id, MessageIn(event_type="order.created", payload={"n": 1}, event_id="py-evt-1"))
deadline = time.time() + 10
while not received and time.time() < deadline:
    time.sleep(0.05)
assert received, "no delivery"
headers, body = received[0]
headers = {k.lower(): v for k, v in headers.items()}
# The SDK's own verifier: raises when the signature or timestamp is wrong.
Webhook(secret).verify(body, headers)
assert headers.get("x-tenant") == "acme", headers
assert json.loads(body) == {"n": 1}
attempts = svix.message_attempt.list_by_msg(app.id, msg.id, MessageAttemptListByMsgOptions(with_content=True))
assert attempts.data and attempts.data[0].response_status_code == 200, attempts
assert attempts.data[0].response == "ok", attempts
assert svix.message.get(app.id, "py-evt-1").id == msg.id
destinations = svix.message_attempt.list_attempted_destinations(app.id, msg.id)
assert [d.id for d in destinations.data] == [ep.id], destinations
page = svix.endpoint.list(app.id)
assert [e.id for e in page.data] == [ep.id]
duplicate = None
try:
    svix.message.create(app.id, MessageIn(event_type="order.created", payload={"n": 2}, event_id="py-evt-1"))
except Exception as error:  # the SDK's HTTP error carries the status
    duplicate = error
assert getattr(duplicate, "status_code", None) == 409, f"a duplicate eventId: {duplicate!r}"
if sdk_major >= 2:
    # Transformations and example events (routes of Svix's hosted API, which 2.x calls).
    from svix.api import EndpointTransformationIn, EndpointTransformationPatch, EventExampleIn

    code = "function handler(webhook) { webhook.payload.via = 'transformation'; return webhook; }"
    svix.endpoint.transformation.patch(app.id, ep.id, EndpointTransformationPatch(code=code, enabled=True))
    got = svix.endpoint.transformation.get(app.id, ep.id)
    assert got.code == code and got.enabled is True, got
    svix.endpoint.transformation_partial_update(app.id, ep.id, EndpointTransformationIn(enabled=False))
    assert svix.endpoint.transformation.get(app.id, ep.id).enabled is False
    svix.endpoint.transformation.patch(app.id, ep.id, EndpointTransformationPatch(enabled=True))
    before = len(received)
    example = svix.endpoint.send_example(app.id, ep.id, EventExampleIn(event_type="order.created"))
    assert example.event_type == "order.created" and example.payload == {}, example
    deadline = time.time() + 10
    while len(received) == before and time.time() < deadline:
        time.sleep(0.05)
    assert len(received) == before + 1, "the example was delivered"
    headers, body = received[-1]
    Webhook(secret).verify(body, {k.lower(): v for k, v in headers.items()})
    assert json.loads(body) == {"via": "transformation"}, body
# Portal access, and expire-all ending it (2.x sends the session ids; 1.x only a delay).
from svix.api import AppPortalAccessIn
access_in = AppPortalAccessIn(session_id="py-session") if sdk_major >= 2 else AppPortalAccessIn()
portal = Svix(svix.authentication.app_portal_access(app.id, access_in).token, SvixOptions(server_url=url))
assert portal.application.get(app.id).id == app.id
if hasattr(svix.authentication, "expire_all"):
    from svix.api import ApplicationTokenExpireIn
    expire_in = ApplicationTokenExpireIn(session_ids=["py-session"]) if sdk_major >= 2 else ApplicationTokenExpireIn()
    svix.authentication.expire_all(app.id, expire_in)
    refused = None
    try:
        portal.application.get(app.id)
    except Exception as error:
        refused = error
    assert getattr(refused, "status_code", None) == 401, f"an expired portal token: {refused!r}"
svix.endpoint.delete(app.id, ep.id)
svix.application.delete(app.id)

if sdk_major >= 2:
    # The ingest gateway through `ingest.source` and `ingest.endpoint` (2.x only; 1.x has none).
    import hashlib
    import hmac
    import urllib.request

    from svix.models import (
        GithubConfig,
        IngestEndpointHeadersIn,
        IngestEndpointIn,
        IngestEndpointSecretIn,
        IngestEndpointUpsertIn,
        IngestSourceIn,
    )

    source = svix.ingest.source.create(
        IngestSourceIn(name="GitHub", uid="py-gh", type="github", config=GithubConfig(secret="hush"))
    )
    assert source.type == "github" and source.ingest_url, source
    assert svix.ingest.source.get("py-gh").id == source.id
    assert [s.id for s in svix.ingest.source.list().data] == [source.id]
    replaced = svix.ingest.source.upsert(
        "py-gh", IngestSourceIn(name="GitHub org", uid="py-gh", type="github", config=GithubConfig(secret="hush"))
    )
    assert replaced.name == "GitHub org", replaced
    ingest_url = svix.ingest.source.rotate_token("py-gh").ingest_url
    assert ingest_url != source.ingest_url
    dest = svix.ingest.endpoint.create("py-gh", IngestEndpointIn(url=hook + "/github", uid="svc"))
    assert svix.ingest.endpoint.get("py-gh", "svc").id == dest.id
    assert [e.id for e in svix.ingest.endpoint.list("py-gh").data] == [dest.id]
    moved = svix.ingest.endpoint.upsert("py-gh", "svc", IngestEndpointUpsertIn(url=hook + "/github", description="ci"))
    assert moved.description == "ci", moved
    old_key = svix.ingest.endpoint.get_secret("py-gh", "svc").key
    svix.ingest.endpoint.rotate_secret("py-gh", "svc", IngestEndpointSecretIn(grace_period_seconds=0))
    dest_key = svix.ingest.endpoint.get_secret("py-gh", "svc").key
    assert dest_key != old_key
    svix.ingest.endpoint.set_headers("py-gh", "svc", IngestEndpointHeadersIn(headers={"X-Env": "prod"}))
    assert svix.ingest.endpoint.get_headers("py-gh", "svc").headers == {"X-Env": "prod"}

    # GitHub sends to the ingest URL; the destination gets the body, signed by Herald.
    event = b'{"action":"opened","number":7}'
    signature = "sha256=" + hmac.new(b"hush", event, hashlib.sha256).hexdigest()
    before = len(received)
    request = urllib.request.Request(ingest_url, data=event, method="POST", headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": signature,
        "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "py-delivery-1",
    })
    assert urllib.request.urlopen(request).status == 200
    deadline = time.time() + 10
    while len(received) == before and time.time() < deadline:
        time.sleep(0.05)
    assert len(received) > before, "the event was not forwarded"
    headers, body = received[-1]
    headers = {k.lower(): v for k, v in headers.items()}
    assert body == event
    Webhook(dest_key).verify(body, headers)
    assert headers.get("x-github-event") == "pull_request" and headers.get("x-env") == "prod", headers
    # A destination's transformation, through `ingest.endpoint.transformation`.
    from svix.api import IngestEndpointTransformationPatch

    code = "function handler(webhook) { webhook.payload.seen = true; return webhook; }"
    svix.ingest.endpoint.transformation.patch("py-gh", "svc", IngestEndpointTransformationPatch(code=code, enabled=True))
    got = svix.ingest.endpoint.transformation.get("py-gh", "svc")
    assert got.code == code and got.enabled is True, got
    svix.ingest.endpoint.delete("py-gh", "svc")
    svix.ingest.source.delete("py-gh")

print("python svix sdk: ok")
