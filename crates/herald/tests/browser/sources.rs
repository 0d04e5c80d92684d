//! The dashboard's ingest sources, as an operator uses them: the list, one source with its
//! ingest URL, its destination and its refused requests, and the way to its events.

use serde_json::json;

use crate::Setup;
use crate::helpers::ADMIN_TOKEN;
use crate::portal::{assert_clean, go};
use crate::receiver::Receiver;
use crate::webdriver::Driver;
use crate::world::World;

pub async fn story(setup: &Setup, driver: &Driver) {
    let world = World::start().await;
    let receiver = Receiver::start().await;
    let created = world
        .server
        .post(
            "/ingest/api/v1/source",
            json!({"name": "GitHub org", "type": "github", "config": {"secret": "s"}}),
        )
        .await;
    assert!(created.status.is_success(), "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let url = created.body["ingestUrl"].as_str().unwrap().to_owned();
    let destination = world
        .server
        .post(&format!("/ingest/api/v1/source/{id}/endpoint"), json!({"url": receiver.url("/ci")}))
        .await;
    assert!(destination.status.is_success(), "{:?}", destination.body);
    // One refused request (no signature), for the refusal log.
    let refused = world.server.client.post(&url).body("{}").send().await.unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);

    let browser = setup.browser(driver).await;
    browser.goto(&world.server.url("/ui")).await;
    browser.wait_for("#token", "").await.type_text(ADMIN_TOKEN).await;
    browser.wait_for("button[type=submit]", "Sign in").await.click().await;
    browser.wait_for("h1", "Overview").await;

    go(&browser, "#/sources").await;
    browser.wait_for("h1", "Sources").await;
    browser.wait_for("a", "GitHub org").await.click().await;
    browser.wait_for("h1", "GitHub org").await;
    let text = browser.main_text().await;
    assert!(text.contains(&url), "the ingest URL is shown: {text}");
    assert!(text.contains(&receiver.url("/ci")), "the destination is listed: {text}");
    assert!(text.contains("missing_signature"), "the refusal is listed: {text}");
    assert!(!text.contains("\"s\""), "no secret is shown");
    browser.screenshot(&setup.screenshot("dashboard-source")).await;
    assert_clean(&browser, "source").await;
    browser.wait_for("a", "Events and forwarding attempts").await.click().await;
    browser.wait_for("h1", "ingest source: GitHub org").await;
    assert_clean(&browser, "source application").await;
    browser.quit().await;
}
