"""Exercises Herald through the official Svix Python SDK (an independent client).

Usage: sdk_check.py SERVER_URL TOKEN. Starts a receiver on 127.0.0.1 (the server must allow
deliveries to loopback), prints "python svix sdk: ok" when every check passed.
"""
import http.server
import json
import sys
import threading
import time

from svix.api import (
    ApplicationIn,
    EndpointIn,
    EndpointPatch,
    EndpointUpsertIn,
    EventTypeIn,
    MessageAttemptListByMsgOptions,
    MessageIn,
    Svix,
    SvixOptions,
)
from svix.webhooks import Webhook

url, token = sys.argv[1], sys.argv[2]
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
ep2 = svix.endpoint.upsert(app.id, ep.id, EndpointUpsertIn(url=hook, description="updated", filter_types=["order.created"]))
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
assert json.loads(body) == {"n": 1}
attempts = svix.message_attempt.list_by_msg(app.id, msg.id, MessageAttemptListByMsgOptions(with_content=True))
assert attempts.data and attempts.data[0].response_status_code == 200, attempts
assert attempts.data[0].response == "ok", attempts
assert svix.message.get(app.id, "py-evt-1").id == msg.id
page = svix.endpoint.list(app.id)
assert [e.id for e in page.data] == [ep.id]
duplicate = None
try:
    svix.message.create(app.id, MessageIn(event_type="order.created", payload={"n": 2}, event_id="py-evt-1"))
except Exception as error:  # the SDK's HTTP error carries the status
    duplicate = error
assert getattr(duplicate, "status_code", None) == 409, f"a duplicate eventId: {duplicate!r}"
svix.endpoint.delete(app.id, ep.id)
svix.application.delete(app.id)
print("python svix sdk: ok")
