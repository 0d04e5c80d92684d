//! The official Svix Rust SDK's `ingest.source` and `ingest.endpoint` calls against Herald,
//! unchanged (pointed at the loopback test server), and an event sent to the URL the SDK got
//! reaching the destination it made.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use svix::api::{IngestEndpointListOptions, IngestSourceListOptions, Svix, SvixOptions};
use svix::models::{
    GithubConfig, IngestEndpointHeadersIn, IngestEndpointIn, IngestEndpointSecretIn, IngestEndpointUpsertIn,
    IngestSourceIn, IngestSourceInConfig, IngestSourceOutConfig, SvixConfig,
};

use crate::helpers::{ADMIN_TOKEN, Options, TestServer};
use crate::receiver::Receiver;

fn sdk(server: &TestServer) -> Svix {
    Svix::new(
        ADMIN_TOKEN.to_owned(),
        Some(SvixOptions { server_url: Some(server.url("")), num_retries: Some(0), ..Default::default() }),
    )
}

#[tokio::test]
async fn the_svix_sdk_manages_sources_and_their_destinations() {
    let server = TestServer::start_with(Options { stepped: true, ..Options::default() }).await;
    let receiver = Receiver::start().await;
    let svix = sdk(&server);
    let ingest = svix.ingest();

    let created = ingest
        .source()
        .create(
            IngestSourceIn {
                name: "GitHub".into(),
                uid: Some("gh".into()),
                metadata: Some(BTreeMap::from([("team".into(), "ops".into())])),
                config: IngestSourceInConfig::Github(GithubConfig { secret: Some("hush".into()) }),
            },
            None,
        )
        .await
        .unwrap();
    assert!(matches!(created.config, IngestSourceOutConfig::Github(_)), "{created:?}");
    let url = created.ingest_url.clone().unwrap();
    assert_eq!(ingest.source().get("gh".into()).await.unwrap(), created);
    let listed = ingest
        .source()
        .list(Some(IngestSourceListOptions { limit: Some(10), ..Default::default() }))
        .await
        .unwrap();
    assert_eq!(listed.data, vec![created.clone()]);

    let replaced = ingest
        .source()
        .upsert(
            "gh".into(),
            IngestSourceIn {
                name: "Clerk".into(),
                uid: Some("gh".into()),
                metadata: None,
                config: IngestSourceInConfig::Clerk(SvixConfig {
                    secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
                }),
            },
        )
        .await
        .unwrap();
    assert!(matches!(replaced.config, IngestSourceOutConfig::Clerk(_)), "{replaced:?}");
    let rotated = ingest.source().rotate_token("gh".into(), None).await.unwrap();
    assert_ne!(rotated.ingest_url, url);

    let destination = ingest
        .endpoint()
        .create(
            "gh".into(),
            IngestEndpointIn {
                url: receiver.url("/dest"),
                description: Some("my service".into()),
                throttle_rate: None,
                uid: Some("svc".into()),
                disabled: None,
                secret: None,
                metadata: None,
                headers: Some(BTreeMap::from([("X-Team".into(), "ops".into())])),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(destination.url, receiver.url("/dest"));
    assert_eq!(ingest.endpoint().get("gh".into(), "svc".into()).await.unwrap().id, destination.id);
    let listed =
        ingest.endpoint().list("gh".into(), Some(IngestEndpointListOptions::default())).await.unwrap();
    assert_eq!(listed.data.len(), 1);
    let updated = ingest
        .endpoint()
        .upsert(
            "gh".into(),
            "svc".into(),
            IngestEndpointUpsertIn {
                url: receiver.url("/dest2"),
                description: Some("moved".into()),
                throttle_rate: None,
                uid: Some("svc".into()),
                disabled: None,
                metadata: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.description, "moved");
    let secret = ingest.endpoint().get_secret("gh".into(), "svc".into()).await.unwrap().key;
    ingest
        .endpoint()
        .rotate_secret(
            "gh".into(),
            "svc".into(),
            IngestEndpointSecretIn { key: None, grace_period_seconds: Some(0) },
            None,
        )
        .await
        .unwrap();
    let new_secret = ingest.endpoint().get_secret("gh".into(), "svc".into()).await.unwrap().key;
    assert_ne!(new_secret, secret);
    ingest
        .endpoint()
        .set_headers(
            "gh".into(),
            "svc".into(),
            IngestEndpointHeadersIn { headers: BTreeMap::from([("X-Env".into(), "prod".into())]) },
        )
        .await
        .unwrap();
    let headers = ingest.endpoint().get_headers("gh".into(), "svc".into()).await.unwrap();
    assert_eq!(headers.headers, BTreeMap::from([("X-Env".into(), "prod".into())]));

    // An event signed as Clerk signs (Svix) at the URL the SDK got reaches the destination,
    // signed with the destination's secret.
    let body = br#"{"type":"user.created","data":{}}"#;
    let headers = crate::ingest::svix_headers("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", body, "msg_clerk_1");
    let mut request = server
        .client
        .post(&rotated.ingest_url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    assert_eq!(request.send().await.unwrap().status(), reqwest::StatusCode::OK);
    server.step().await;
    let forwarded = receiver.received().remove(0);
    assert_eq!(forwarded.path, "/dest2");
    assert_eq!(forwarded.header("x-env"), "prod");
    herald_receiver::Verifier::new(&new_secret).unwrap().verify(&forwarded.headers, &forwarded.body).unwrap();

    ingest.endpoint().delete("gh".into(), "svc".into()).await.unwrap();
    assert!(ingest.endpoint().get("gh".into(), "svc".into()).await.is_err());
    ingest.source().delete("gh".into()).await.unwrap();
    assert!(ingest.source().get("gh".into()).await.is_err());
}
