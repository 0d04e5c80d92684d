//! The ingest gateway end to end: a provider's correctly signed request is accepted and its
//! body forwarded byte for byte to the source's destination, signed there with Standard
//! Webhooks (checked with `herald-receiver`); a tampered body, a wrong secret and a stale
//! timestamp are refused (401) and logged; a repeated delivery id is answered 200 and not
//! forwarded again, also when the copies arrive at once; an accepted event is forwarded after
//! a restart. Every provider scheme Herald verifies is covered.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::Signer as _;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, TestServer, assert_error, read};
use crate::receiver::Receiver;

/// The provider headers that carry a signature, never forwarded.
const SIGNATURE_HEADERS: &[&str] = &[
    "authorization",
    "x-hub-signature-256",
    "stripe-signature",
    "x-shopify-hmac-sha256",
    "shopify-hmac-sha256",
    "x-slack-signature",
    "x-hubspot-signature-v3",
    "x-zm-signature",
    "x-signature",
    "telnyx-signature-ed25519",
    "x-docusign-signature-1",
];

fn hmac256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    parts.iter().for_each(|part| mac.update(part));
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> i64 {
    herald_core::clock::system_now().timestamp()
}

/// A provider as a test drives it: its type and configuration at Herald, and how it signs.
#[derive(Debug, Clone, Copy)]
struct Provider {
    kind: &'static str,
    /// Its scheme signs a timestamp (so a stale one is refused).
    timestamped: bool,
    /// It names each delivery (so a redelivery is a duplicate).
    identified: bool,
}

const SVIX_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SVIX_SECRET: &str = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY";
const TELNYX_SEED: [u8; 32] = [7; 32];

impl Provider {
    /// The source's configuration at Herald.
    fn config(self) -> Value {
        match self.kind {
            "generic-webhook" => json!({"bearerToken": "secret"}),
            "svix" | "standard-webhooks" | "clerk" => json!({"secret": SVIX_SECRET}),
            "telnyx" => {
                let public = ed25519_dalek::SigningKey::from_bytes(&TELNYX_SEED).verifying_key();
                json!({"publicKey": BASE64.encode(public.to_bytes())})
            }
            _ => json!({"secret": "secret"}),
        }
    }

    /// A body as the provider sends it, with its delivery id in it where the scheme puts it.
    fn body(self, id: &str) -> (Vec<u8>, &'static str) {
        let json = |value: Value| (serde_json::to_vec(&value).unwrap(), "application/json");
        match self.kind {
            "stripe" => json(json!({"id": id, "type": "customer.created", "data": {}})),
            "slack" => (
                format!("token=x&command=%2Fdeploy&text=v{id}").into_bytes(),
                "application/x-www-form-urlencoded",
            ),
            "hubspot" => json(json!([{"eventId": id, "subscriptionType": "contact.creation"}])),
            "segment" => json(json!({"messageId": id, "type": "track"})),
            "telnyx" => json(json!({"data": {"id": id, "event_type": "call.initiated"}})),
            "docusign" => json(json!({"event": "envelope-sent", "n": id})),
            "zoom" => json(json!({"event": "meeting.started", "n": id})),
            _ => json(json!({"type": "order.created", "n": id})),
        }
    }

    /// The headers the provider sends with `body`, signed with `secret` at `at`.
    fn headers(self, secret: &str, body: &[u8], at: i64, id: &str, url: &str) -> Vec<(String, String)> {
        let t = at.to_string();
        let pairs: Vec<(&str, String)> = match self.kind {
            "generic-webhook" => {
                vec![("authorization", format!("Bearer {secret}")), ("webhook-id", id.into())]
            }
            "svix" | "clerk" | "standard-webhooks" => {
                let key = BASE64.decode(secret.trim_start_matches("whsec_")).unwrap();
                let signature =
                    BASE64.encode(hmac256(&key, &[id.as_bytes(), b".", t.as_bytes(), b".", body]));
                let prefix = if self.kind == "standard-webhooks" { "webhook" } else { "svix" };
                vec![
                    (if prefix == "svix" { "svix-id" } else { "webhook-id" }, id.into()),
                    (if prefix == "svix" { "svix-timestamp" } else { "webhook-timestamp" }, t.clone()),
                    (
                        if prefix == "svix" { "svix-signature" } else { "webhook-signature" },
                        format!("v1,{signature}"),
                    ),
                ]
            }
            "github" => vec![
                ("x-hub-signature-256", format!("sha256={}", hex(&hmac256(secret.as_bytes(), &[body])))),
                ("x-github-delivery", id.into()),
                ("x-github-event", "push".into()),
            ],
            "stripe" => {
                let signature = hex(&hmac256(secret.as_bytes(), &[t.as_bytes(), b".", body]));
                vec![("stripe-signature", format!("t={t},v1={signature}"))]
            }
            "shopify" => vec![
                ("x-shopify-hmac-sha256", BASE64.encode(hmac256(secret.as_bytes(), &[body]))),
                ("x-shopify-webhook-id", id.into()),
                ("x-shopify-topic", "orders/create".into()),
            ],
            "slack" => vec![
                (
                    "x-slack-signature",
                    format!("v0={}", hex(&hmac256(secret.as_bytes(), &[b"v0:", t.as_bytes(), b":", body]))),
                ),
                ("x-slack-request-timestamp", t.clone()),
            ],
            "hubspot" => {
                let ms = format!("{at}000");
                let signature = BASE64
                    .encode(hmac256(secret.as_bytes(), &[b"POST", url.as_bytes(), body, ms.as_bytes()]));
                vec![("x-hubspot-signature-v3", signature), ("x-hubspot-request-timestamp", ms)]
            }
            "zoom" => vec![
                (
                    "x-zm-signature",
                    format!("v0={}", hex(&hmac256(secret.as_bytes(), &[b"v0:", t.as_bytes(), b":", body]))),
                ),
                ("x-zm-request-timestamp", t.clone()),
                ("x-zm-trackingid", id.into()),
            ],
            "segment" => {
                let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
                mac.update(body);
                vec![("x-signature", hex(&mac.finalize().into_bytes()))]
            }
            "telnyx" => {
                let seed: [u8; 32] = if secret == "secret" { TELNYX_SEED } else { [8; 32] };
                let key = ed25519_dalek::SigningKey::from_bytes(&seed);
                let signature = key.sign(&[t.as_bytes(), b"|", body].concat());
                vec![
                    ("telnyx-signature-ed25519", BASE64.encode(signature.to_bytes())),
                    ("telnyx-timestamp", t.clone()),
                ]
            }
            "docusign" => {
                vec![("x-docusign-signature-1", BASE64.encode(hmac256(secret.as_bytes(), &[body])))]
            }
            other => panic!("no signer for {other}"),
        };
        pairs.into_iter().map(|(n, v)| (n.to_owned(), v)).collect()
    }

    fn secret(self, right: bool) -> &'static str {
        match (self.kind, right) {
            ("svix" | "clerk" | "standard-webhooks", true) => SVIX_SECRET,
            ("svix" | "clerk" | "standard-webhooks", false) => OTHER_SVIX_SECRET,
            (_, true) => "secret",
            (_, false) => "another-secret",
        }
    }
}

/// A stepped server with a source of `kind` and one destination at a receiver: (server,
/// receiver, source id, ingest URL, destination secret).
async fn source_with_destination(
    kind: &str,
    config: Value,
) -> (TestServer, Receiver, String, String, String) {
    let server = TestServer::start_with(Options { stepped: true, ..Options::default() }).await;
    let receiver = Receiver::start().await;
    let created = server
        .post(
            "/ingest/api/v1/source",
            json!({"name": format!("{kind} source"), "type": kind, "config": config}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let url = created.body["ingestUrl"].as_str().unwrap().to_owned();
    let destination = server
        .post(
            &format!("/ingest/api/v1/source/{id}/endpoint"),
            json!({"url": receiver.url("/dest"), "uid": "main"}),
        )
        .await;
    assert_eq!(destination.status, StatusCode::CREATED, "{:?}", destination.body);
    let secret = server.get(&format!("/ingest/api/v1/source/{id}/endpoint/main/secret")).await.body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    (server, receiver, id, url, secret)
}

async fn deliver(
    server: &TestServer,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    content_type: &str,
) -> crate::helpers::Reply {
    let mut request = server.client.post(url).header("content-type", content_type).body(body.to_vec());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    read(request.send().await.unwrap()).await
}

async fn check_provider(provider: Provider) {
    let (server, receiver, source, url, destination_secret) =
        source_with_destination(provider.kind, provider.config()).await;
    let (body, content_type) = provider.body("delivery-1");
    let signed = provider.headers(provider.secret(true), &body, now(), "delivery-1", &url);

    let accepted = deliver(&server, &url, &signed, &body, content_type).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}: {:?}", provider.kind, accepted.body);
    assert_eq!(accepted.body["duplicate"], false);
    assert_eq!(server.step().await.leased, 1);
    let received = receiver.received();
    assert_eq!(received.len(), 1, "{}", provider.kind);
    let forwarded = &received[0];
    assert_eq!(forwarded.body.as_ref(), body.as_slice(), "{}: forwarded byte for byte", provider.kind);
    assert_eq!(forwarded.header("content-type"), content_type);
    let verifier = herald_receiver::Verifier::new(&destination_secret).unwrap();
    verifier.verify(&forwarded.headers, &forwarded.body).unwrap();
    for name in SIGNATURE_HEADERS {
        assert!(forwarded.headers.get(*name).is_none(), "{}: {name} was forwarded", provider.kind);
    }
    // Herald's own signature (also under Svix's names), never the provider's.
    assert_eq!(forwarded.header("svix-signature"), forwarded.header("webhook-signature"));

    let mut refusals = 0;
    // A bearer token or basic credentials do not cover the body: only signatures do.
    if provider.kind != "generic-webhook" {
        let (tampered, _) = provider.body("delivery-1-tampered");
        let reply = deliver(&server, &url, &signed, &tampered, content_type).await;
        assert_refused(&reply, "bad_signature", provider.kind);
        refusals += 1;
    }
    let wrong = provider.headers(provider.secret(false), &body, now(), "delivery-1", &url);
    assert_refused(
        &deliver(&server, &url, &wrong, &body, content_type).await,
        "bad_signature",
        provider.kind,
    );
    refusals += 1;
    if provider.timestamped {
        let stale = provider.headers(provider.secret(true), &body, now() - 600, "delivery-1", &url);
        assert_refused(
            &deliver(&server, &url, &stale, &body, content_type).await,
            "stale_timestamp",
            provider.kind,
        );
        refusals += 1;
    }
    if provider.identified {
        let again = deliver(&server, &url, &signed, &body, content_type).await;
        assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
        assert_eq!(again.body["duplicate"], true, "{}", provider.kind);
        assert_eq!(again.body["id"], accepted.body["id"]);
    }
    assert_eq!(server.step().await.leased, 0, "{}: nothing more is forwarded", provider.kind);
    assert_eq!(receiver.count(), 1);

    let log = server.get(&format!("/ingest/api/v1/source/{source}/refusal")).await;
    assert_eq!(log.body["data"].as_array().unwrap().len(), refusals, "{:?}", log.body);
    if provider.timestamped {
        assert_eq!(log.body["data"][0]["reason"], "stale_timestamp");
    }
    assert_eq!(log.body["data"][0]["address"], "127.0.0.1");
}

/// Svix's headers for `body` signed with `secret` now (as Clerk, Resend, … send them).
pub fn svix_headers(secret: &str, body: &[u8], id: &str) -> Vec<(String, String)> {
    Provider { kind: "svix", timestamped: true, identified: true }.headers(secret, body, now(), id, "")
}

#[track_caller]
fn assert_refused(reply: &crate::helpers::Reply, reason: &str, kind: &str) {
    assert_error(reply, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body["code"], "ingest_refused", "{kind}: {:?}", reply.body);
    assert!(reply.body["detail"].as_str().unwrap().contains(reason), "{kind}: {:?}", reply.body);
}

macro_rules! providers {
    ($($test:ident: $kind:literal, timestamped: $ts:literal, identified: $id:literal;)*) => {$(
        #[tokio::test]
        async fn $test() {
            check_provider(Provider { kind: $kind, timestamped: $ts, identified: $id }).await;
        }
    )*};
}

providers! {
    generic_webhook_with_a_bearer_token: "generic-webhook", timestamped: false, identified: true;
    svix_signed: "svix", timestamped: true, identified: true;
    standard_webhooks_signed: "standard-webhooks", timestamped: true, identified: true;
    clerk_signs_with_svix: "clerk", timestamped: true, identified: true;
    github_signed: "github", timestamped: false, identified: true;
    stripe_signed: "stripe", timestamped: true, identified: true;
    shopify_signed: "shopify", timestamped: false, identified: true;
    slack_signed_form_body: "slack", timestamped: true, identified: false;
    hubspot_v3_signed: "hubspot", timestamped: true, identified: true;
    zoom_signed: "zoom", timestamped: true, identified: true;
    segment_signed: "segment", timestamped: false, identified: true;
    telnyx_ed25519_signed: "telnyx", timestamped: true, identified: true;
    docusign_signed: "docusign", timestamped: false, identified: false;
}

#[tokio::test]
async fn github_events_are_typed_and_carry_the_provider_headers_that_mean_something() {
    let (server, receiver, source, url, _) = source_with_destination("github", json!({"secret": "s"})).await;
    let body = br#"{"action":"opened","number":1}"#;
    let mut headers = Provider { kind: "github", timestamped: false, identified: true }.headers(
        "s",
        body,
        now(),
        "gh-1",
        &url,
    );
    headers.retain(|(name, _)| name != "x-github-event");
    headers.push(("x-github-event".into(), "pull_request".into()));
    headers.push(("x-github-hook-id".into(), "42".into()));
    assert_eq!(deliver(&server, &url, &headers, body, "application/json").await.status, StatusCode::OK);
    server.step().await;
    let forwarded = receiver.received().remove(0);
    assert_eq!(forwarded.header("x-github-event"), "pull_request");
    assert_eq!(forwarded.header("x-github-delivery"), "gh-1");
    assert_eq!(forwarded.header("x-github-hook-id"), "42");
    let metrics = server.client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|l| l == "herald_ingest_forward_latency_seconds_count 1"), "{metrics}");
    // The event is a message of the source's application, typed by the provider.
    let app = server.get(&format!("/ingest/api/v1/source/{source}")).await.body["appId"]
        .as_str()
        .unwrap()
        .to_owned();
    let events = server.get(&format!("/api/v1/app/{app}/msg")).await;
    assert_eq!(events.body["data"][0]["eventType"], "pull_request.opened");
    assert_eq!(events.body["data"][0]["eventId"], "gh-1");
    // The application is the source's: not in the application list.
    assert_eq!(server.get("/api/v1/app").await.body["data"], json!([]));
}

#[tokio::test]
async fn shopify_events_api_deliveries_without_x_headers_are_verified_forwarded_and_deduplicated() {
    let (server, receiver, source, url, destination_secret) =
        source_with_destination("shopify", json!({"secret": "shpss_events"})).await;
    let body = br#"{"id":820982911946154508,"email":"jon@example.com","total_price":"10.00"}"#;
    let webhook_id = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043";
    // Shopify's Events API names its headers without `X-` (and in this case).
    let events_api = |secret: &str, body: &[u8]| -> Vec<(String, String)> {
        [
            ("Shopify-Hmac-Sha256", BASE64.encode(hmac256(secret.as_bytes(), &[body]))),
            ("Shopify-Webhook-Id", webhook_id.to_owned()),
            ("Shopify-Topic", "orders/create".to_owned()),
            ("Shopify-Shop-Domain", "shop.example.com".to_owned()),
            ("Shopify-Triggered-At", "2026-12-07T04:00:00.000Z".to_owned()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    };
    let signed = events_api("shpss_events", body);

    let accepted = deliver(&server, &url, &signed, body, "application/json").await;
    assert_eq!(accepted.status, StatusCode::OK, "{:?}", accepted.body);
    assert_eq!(accepted.body["duplicate"], false);
    assert_eq!(server.step().await.leased, 1);
    let forwarded = receiver.received().remove(0);
    assert_eq!(forwarded.body.as_ref(), body.as_slice(), "forwarded byte for byte");
    herald_receiver::Verifier::new(&destination_secret)
        .unwrap()
        .verify(&forwarded.headers, &forwarded.body)
        .unwrap();
    for name in SIGNATURE_HEADERS {
        assert!(forwarded.headers.get(*name).is_none(), "{name} was forwarded");
    }
    assert_eq!(forwarded.header("shopify-topic"), "orders/create");
    assert_eq!(forwarded.header("shopify-webhook-id"), webhook_id);
    assert_eq!(forwarded.header("shopify-shop-domain"), "shop.example.com");
    let app = server.get(&format!("/ingest/api/v1/source/{source}")).await.body["appId"]
        .as_str()
        .unwrap()
        .to_owned();
    let events = server.get(&format!("/api/v1/app/{app}/msg")).await;
    assert_eq!(events.body["data"][0]["eventType"], "orders.create");
    assert_eq!(events.body["data"][0]["eventId"], webhook_id);

    // Shopify-Webhook-Id deduplicates: the redelivery is answered, not forwarded again.
    let again = deliver(&server, &url, &signed, body, "application/json").await;
    assert_eq!((again.status, again.body["duplicate"].clone()), (StatusCode::OK, json!(true)));
    assert_eq!(again.body["id"], accepted.body["id"]);
    // The signature is checked under this name too: a tampered body or another secret is refused.
    let tampered = br#"{"id":820982911946154508,"email":"eve@example.com","total_price":"0.00"}"#;
    assert_refused(
        &deliver(&server, &url, &signed, tampered, "application/json").await,
        "bad_signature",
        "shopify",
    );
    let wrong = events_api("shpss_other", body);
    assert_refused(
        &deliver(&server, &url, &wrong, body, "application/json").await,
        "bad_signature",
        "shopify",
    );
    assert_eq!(server.step().await.leased, 0, "nothing more is forwarded");
    assert_eq!(receiver.count(), 1);
}

/// Posts a generic-webhook event (no credentials configured) with `webhook-id: id`.
async fn post_plain(server: &TestServer, url: &str, id: &str, body: &[u8]) -> crate::helpers::Reply {
    deliver(server, url, &[("webhook-id".to_owned(), id.to_owned())], body, "text/plain").await
}

#[tokio::test]
async fn sources_are_managed_in_svix_shapes_and_never_show_their_secrets() {
    let clock = std::sync::Arc::new(herald_core::clock::ManualClock::starting_now());
    let server =
        TestServer::start_with(Options { clock: Some(clock), stepped: true, ..Options::default() }).await;
    let created = server
        .post(
            "/ingest/api/v1/source",
            json!({"name": "GitHub", "uid": "gh", "type": "github", "config": {"secret": "hush"}, "metadata": {"team": "ops"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let source = &created.body;
    assert!(source["id"].as_str().unwrap().starts_with("src_"));
    assert_eq!((source["type"].clone(), source["config"].clone()), (json!("github"), json!({})));
    assert!(!created.body.to_string().contains("hush"), "the secret is never shown");
    let url = source["ingestUrl"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&server.url("/in/in_")), "{url}");
    assert_eq!(server.get("/ingest/api/v1/source/gh").await.body, created.body);
    assert_eq!(server.get("/ingest/api/v1/source").await.body["data"], json!([created.body]));
    assert_eq!(server.get("/api/v1/app").await.body["data"], json!([]), "its application is not listed");

    // Invalid input is refused field by field; a type's secret is required where it signs.
    let bad = server.post("/ingest/api/v1/source", json!({"name": "x", "type": "nope"})).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let locs: Vec<Value> = bad.body["detail"].as_array().unwrap().iter().map(|d| d["loc"].clone()).collect();
    assert_eq!(locs, vec![json!(["body", "name"]), json!(["body", "type"])]);
    let no_secret = server.post("/ingest/api/v1/source", json!({"name": "Stripe", "type": "stripe"})).await;
    assert_eq!(no_secret.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", no_secret.body);
    let taken =
        server.post("/ingest/api/v1/source", json!({"name": "Again", "uid": "gh", "type": "github"})).await;
    assert_eq!(assert_error(&taken, StatusCode::CONFLICT), "an ingest source with this uid already exists");

    let patched = server.patch("/ingest/api/v1/source/gh", json!({"name": "GitHub org"})).await;
    assert_eq!(patched.body["name"], "GitHub org");
    assert_eq!(patched.body["ingestUrl"], url.as_str(), "a change keeps the URL");
    let replaced = server
        .put(
            "/ingest/api/v1/source/gh",
            json!({"name": "Shop", "type": "shopify", "config": {"secret": "s"}}),
        )
        .await;
    assert_eq!((replaced.status, replaced.body["type"].clone()), (StatusCode::OK, json!("shopify")));
    let upserted = server
        .put("/ingest/api/v1/source/new-one", json!({"name": "Plain", "type": "generic-webhook"}))
        .await;
    assert_eq!(upserted.status, StatusCode::CREATED);
    assert_eq!(upserted.body["uid"], "new-one");
    assert!(upserted.body.get("config").is_none(), "generic-webhook has no config, as in Svix");

    // Rotation: the new URL works at once, the old one for ingest_token_grace (48h).
    let plain = upserted.body["ingestUrl"].as_str().unwrap().to_owned();
    let rotated = server.post("/ingest/api/v1/source/new-one/token/rotate", json!({})).await;
    let new_url = rotated.body["ingestUrl"].as_str().unwrap().to_owned();
    assert_ne!(new_url, plain);
    assert_eq!(server.get("/ingest/api/v1/source/new-one").await.body["ingestUrl"], new_url.as_str());
    assert_eq!(post_plain(&server, &plain, "a", b"old").await.status, StatusCode::OK);
    assert_eq!(post_plain(&server, &new_url, "b", b"new").await.status, StatusCode::OK);
    server.advance(chrono::Duration::hours(48));
    let gone = post_plain(&server, &plain, "c", b"old").await;
    assert_error(&gone, StatusCode::NOT_FOUND);
    assert_eq!(gone.body["code"], "ingest_url_not_found");
    assert_eq!(post_plain(&server, &new_url, "d", b"new").await.status, StatusCode::OK);

    assert_eq!(server.delete("/ingest/api/v1/source/new-one").await.status, StatusCode::NO_CONTENT);
    assert_eq!(server.get("/ingest/api/v1/source/new-one").await.body["code"], "source_not_found");
    assert_eq!(post_plain(&server, &new_url, "e", b"new").await.status, StatusCode::NOT_FOUND);
    let with_app_token = server.post("/api/v1/auth/app-portal-access/x", json!({})).await;
    assert_eq!(with_app_token.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bodies_up_to_ingest_max_body_bytes_are_accepted_and_larger_ones_refused_and_logged() {
    let options = Options {
        stepped: true,
        env: vec![("HERALD_INGEST_MAX_BODY_BYTES", "2048".into())],
        ..Options::default()
    };
    let server = TestServer::start_with(options).await;
    let source =
        server.post("/ingest/api/v1/source", json!({"name": "Plain", "type": "generic-webhook"})).await.body;
    let url = source["ingestUrl"].as_str().unwrap();
    assert_eq!(post_plain(&server, url, "at", &[b'a'; 2048]).await.status, StatusCode::OK);
    let past = post_plain(&server, url, "past", &[b'a'; 2049]).await;
    assert_eq!(past.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", past.body);
    let log = server.get(&format!("/ingest/api/v1/source/{}/refusal", source["id"].as_str().unwrap())).await;
    assert_eq!(log.body["data"][0]["reason"], "too_large");
    // The ingest limit is its own: the API's max_body_bytes does not apply to ingest URLs.
    let big =
        Options { stepped: true, env: vec![("HERALD_MAX_BODY_BYTES", "1024".into())], ..Options::default() };
    let server = TestServer::start_with(big).await;
    let source =
        server.post("/ingest/api/v1/source", json!({"name": "Plain", "type": "generic-webhook"})).await.body;
    let url = source["ingestUrl"].as_str().unwrap();
    assert_eq!(post_plain(&server, url, "big", &[b'a'; 100_000]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn copies_of_one_delivery_arriving_at_once_are_stored_and_forwarded_once() {
    let (server, receiver, _, url, _) = source_with_destination("github", json!({"secret": "s"})).await;
    let provider = Provider { kind: "github", timestamped: false, identified: true };
    let (body, _) = provider.body("same");
    let headers = provider.headers("s", &body, now(), "same", &url);
    let server = std::sync::Arc::new(server);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (server, url, headers, body) = (server.clone(), url.clone(), headers.clone(), body.clone());
        tasks.spawn(async move { deliver(&server, &url, &headers, &body, "application/json").await });
    }
    let replies = tasks.join_all().await;
    assert!(replies.iter().all(|r| r.status == StatusCode::OK), "{replies:?}");
    let firsts = replies.iter().filter(|r| r.body["duplicate"] == false).count();
    assert_eq!(firsts, 1, "exactly one copy is new: {replies:?}");
    let ids: std::collections::HashSet<String> = replies.iter().map(|r| r.body["id"].to_string()).collect();
    assert_eq!(ids.len(), 1, "every copy names the same message");
    assert_eq!(server.step().await.leased, 1);
    assert_eq!(receiver.count(), 1);
}

#[tokio::test]
async fn a_delivery_id_seen_before_the_window_is_a_new_event() {
    let clock = std::sync::Arc::new(herald_core::clock::ManualClock::starting_now());
    let options = Options {
        clock: Some(clock),
        stepped: true,
        env: vec![("HERALD_INGEST_DEDUP_WINDOW", "1h".into())],
        ..Options::default()
    };
    let server = TestServer::start_with(options).await;
    let source =
        server.post("/ingest/api/v1/source", json!({"name": "Plain", "type": "generic-webhook"})).await.body;
    let url = source["ingestUrl"].as_str().unwrap();
    let first = post_plain(&server, url, "evt-1", b"one").await;
    assert_eq!(post_plain(&server, url, "evt-1", b"one").await.body["duplicate"], true);
    server.advance(chrono::Duration::minutes(61));
    let later = post_plain(&server, url, "evt-1", b"one").await;
    assert_eq!(later.body["duplicate"], false);
    assert_ne!(later.body["id"], first.body["id"]);
}

#[tokio::test]
async fn an_event_answered_2xx_is_forwarded_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    let stepped = || Options { stepped: true, ..Options::default() };
    let server = TestServer::start_in(dir.path(), stepped()).await;
    let source =
        server.post("/ingest/api/v1/source", json!({"name": "Plain", "type": "generic-webhook"})).await.body;
    let id = source["id"].as_str().unwrap();
    server.post(&format!("/ingest/api/v1/source/{id}/endpoint"), json!({"url": receiver.url("/dest")})).await;
    let url = source["ingestUrl"].as_str().unwrap().to_owned();
    let accepted = post_plain(&server, &url, "kept", b"kept across a restart").await;
    assert_eq!(accepted.status, StatusCode::OK);
    // Stopped before the worker ever ran: the answer came after the commit, so it is there.
    server.stop().await;
    let server = TestServer::start_in(dir.path(), stepped()).await;
    // Serving means the worker is up (it starts first), so the step below has a dispatcher.
    assert_eq!(server.get("/health/ready").await.status, StatusCode::OK);
    assert_eq!(server.step().await.leased, 1);
    let forwarded = receiver.received();
    assert_eq!(forwarded.len(), 1);
    assert_eq!(forwarded[0].body.as_ref(), b"kept across a restart");
    assert_eq!(forwarded[0].header("content-type"), "text/plain");
    // The same URL on the restarted server (its port changed) still knows the delivery id.
    let path = &url[url.find("/in/").unwrap()..];
    assert_eq!(
        post_plain(&server, &server.url(path), "kept", b"kept across a restart").await.body["duplicate"],
        true
    );
    assert_eq!(receiver.count(), 1);
}

#[tokio::test]
async fn url_checks_are_answered_at_once_and_not_forwarded() {
    let (server, receiver, _, url, _) = source_with_destination("slack", json!({"secret": "s"})).await;
    let provider = Provider { kind: "slack", timestamped: true, identified: false };
    let body = br#"{"type":"url_verification","challenge":"3eZbrw1a"}"#;
    let headers = provider.headers("s", body, now(), "", &url);
    let reply = deliver(&server, &url, &headers, body, "application/json").await;
    assert_eq!((reply.status, reply.body.clone()), (StatusCode::OK, json!({"challenge": "3eZbrw1a"})));
    assert_eq!(server.step().await.leased, 0);
    assert_eq!(receiver.count(), 0);
}

#[tokio::test]
async fn ingest_metrics_count_received_duplicates_and_refusals_by_reason() {
    let server = TestServer::start_with(Options { stepped: true, ..Options::default() }).await;
    let source = server
        .post("/ingest/api/v1/source", json!({"name": "GH", "type": "github", "config": {"secret": "s"}}))
        .await
        .body;
    let url = source["ingestUrl"].as_str().unwrap();
    let provider = Provider { kind: "github", timestamped: false, identified: true };
    let (body, _) = provider.body("m-1");
    let headers = provider.headers("s", &body, now(), "m-1", url);
    deliver(&server, url, &headers, &body, "application/json").await;
    deliver(&server, url, &headers, &body, "application/json").await;
    deliver(&server, url, &[], &body, "application/json").await;
    deliver(&server, &server.url("/in/in_unknown"), &[], &body, "application/json").await;
    let metrics = server.client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for line in [
        "herald_ingest_received_total 1",
        "herald_ingest_duplicates_total 1",
        "herald_ingest_refused_total{reason=\"missing_signature\"} 1",
        "herald_ingest_refused_total{reason=\"unknown_token\"} 1",
        "herald_ingest_refused_total{reason=\"bad_signature\"} 0",
        "herald_ingest_forward_latency_seconds_count 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
}

#[tokio::test]
async fn the_cli_creates_lists_shows_rotates_and_deletes_sources() {
    use crate::client::herald_with;
    use crate::helpers::ADMIN_TOKEN;
    let server = TestServer::start().await;
    let run = |args: &'static [&'static str], stdin: Option<&'static str>| {
        let server = &server;
        async move { herald_with(Some(server), Some(ADMIN_TOKEN), args, stdin).await }
    };
    let created = run(
        &[
            "source",
            "create",
            "--name",
            "GitHub",
            "--type",
            "github",
            "--uid",
            "gh",
            "--secret-stdin",
            "--json",
        ],
        Some("hush\n"),
    )
    .await
    .json();
    let url = created["ingestUrl"].as_str().unwrap().to_owned();
    assert!(!created.to_string().contains("hush"));
    let table = run(&["source", "list"], None).await;
    assert!(table.ok().contains("GitHub") && table.ok().contains(&url), "{}", table.stdout);
    assert_eq!(run(&["source", "get", "gh", "--json"], None).await.json()["id"], created["id"]);
    let rotated = run(&["source", "rotate", "gh", "--json"], None).await.json();
    assert_ne!(rotated["ingestUrl"].as_str().unwrap(), url);
    // The secret given on standard input is the one the source verifies with.
    let provider = Provider { kind: "github", timestamped: false, identified: true };
    let (body, _) = provider.body("cli-1");
    let good = provider.headers("hush", &body, now(), "cli-1", &url);
    assert_eq!(deliver(&server, &url, &good, &body, "application/json").await.status, StatusCode::OK);
    let bad = provider.headers("other", &body, now(), "cli-2", &url);
    assert_eq!(
        deliver(&server, &url, &bad, &body, "application/json").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(run(&["source", "refusals", "gh"], None).await.ok().contains("bad_signature"));
    assert!(run(&["source", "delete", "gh"], None).await.ok().contains("Deleted"));
    assert!(!run(&["source", "get", "gh"], None).await.status.success());
}

#[tokio::test]
async fn source_names_and_refusal_pages_are_checked_at_their_limits() {
    let server = TestServer::start().await;
    let at = server
        .post("/ingest/api/v1/source", json!({"name": "n".repeat(256), "type": "generic-webhook"}))
        .await;
    assert_eq!(at.status, StatusCode::CREATED);
    let past = server
        .post("/ingest/api/v1/source", json!({"name": "n".repeat(257), "type": "generic-webhook"}))
        .await;
    assert_eq!(past.status, StatusCode::UNPROCESSABLE_ENTITY);
    let short = server.post("/ingest/api/v1/source", json!({"name": "nn", "type": "generic-webhook"})).await;
    assert_eq!(short.status, StatusCode::CREATED);
    let id = at.body["id"].as_str().unwrap();
    assert_eq!(
        server.get(&format!("/ingest/api/v1/source/{id}/refusal?limit=250")).await.status,
        StatusCode::OK
    );
    let over = server.get(&format!("/ingest/api/v1/source/{id}/refusal?limit=251")).await;
    assert_eq!(over.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        server.get(&format!("/ingest/api/v1/source/{id}/refusal?limit=0")).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}
