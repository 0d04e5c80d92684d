//! The customer portal, as a customer uses it: open the link, add an endpoint (seeing the
//! API's error first), read the secret, send a test event, see the failed attempt and its
//! response, resend it, edit and delete the endpoint, and find nothing of other customers.

use std::time::Duration;

use serde_json::{Value, json};

use crate::Setup;
use crate::helpers::ADMIN_TOKEN;
use crate::receiver::{Receiver, Reply};
use crate::webdriver::{Browser, Driver};
use crate::world::{World, serve_page};

/// Asserts that the page ran without script errors or CSP violations.
pub async fn assert_clean(browser: &Browser, page: &str) {
    let problems = browser.problems().await;
    assert!(problems.is_empty(), "{page}: {problems:?}");
}

/// Moves within the single-page app, as a link would.
pub async fn go(browser: &Browser, fragment: &str) {
    browser.run("location.hash = arguments[0]", json!([fragment])).await;
}

pub async fn story(setup: &Setup, driver: &Driver) {
    let world = World::start().await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::Body(500, "temporarily down: try again later".to_owned())]);
    receiver.always(Reply::Body(200, r#"{"received":true}"#.to_owned()));
    let other =
        world.endpoint("globex", json!({"url": receiver.url("/globex"), "description": "Globex ops"})).await;
    let (link, token) = world.portal("acme").await;
    assert!(link.contains(&format!("#app={}&token=", world.acme)), "{link}");
    let browser = setup.browser(driver).await;

    // Opening the link: the token leaves the address bar at once and stays in this tab only.
    browser.goto(&link).await;
    browser.wait_for("#app-name", "Acme Inc").await;
    browser.wait_for(".empty", "No endpoints yet").await;
    let address = browser.current_url().await;
    assert!(!address.contains(&token) && !address.contains("token="), "{address}");
    let kept = browser.run("return sessionStorage.getItem('herald.portal')", json!([])).await;
    assert!(kept.as_str().unwrap_or_default().contains(&token));
    // Adding an endpoint: a bad URL shows the API's own explanation next to the field.
    browser.wait_for("a.button", "Add endpoint").await.click().await;
    let url = browser.wait_for("input[name=url]", "").await;
    url.type_text("not a url").await;
    browser.wait_for("button[type=submit]", "Add endpoint").await.click().await;
    browser.wait_for(".field-error", "not a valid URL").await;
    browser.wait_for("[role=alert]", "422").await;
    url.type_text(&receiver.url("/hooks")).await;
    browser.wait_for("input[name=description]", "").await.type_text("Orders").await;
    browser.wait_for("label.check", "order.created").await.click().await;
    browser.wait_for("button[type=submit]", "Add endpoint").await.click().await;
    browser.wait_for("h1", "Orders").await;
    let endpoints = world.server.get("/api/v1/app/acme/endpoint").await.body["data"].clone();
    assert_eq!(endpoints.as_array().unwrap().len(), 1, "{endpoints}");
    assert_eq!(endpoints[0]["url"], receiver.url("/hooks"));
    assert_eq!(endpoints[0]["eventTypes"], json!(["order.created"]));
    let endpoint = endpoints[0]["id"].as_str().unwrap().to_owned();

    // The signing secret: hidden until asked for, then the one Herald signs with.
    // (The hidden placeholder starts with `whsec_` too, so the wait is for the secret itself.)
    let secret = world.server.get(&format!("/api/v1/app/acme/endpoint/{endpoint}/secret")).await;
    let secret = secret.body["key"].as_str().unwrap().to_owned();
    browser.wait_for("#secret-toggle", "Show").await.click().await;
    let shown = browser.wait_for("#secret-value", &secret).await.text().await;
    assert_eq!(shown, secret);
    browser.wait_for("#secret-toggle", "Hide").await.click().await;
    browser.wait_for("#secret-value", "••••").await;
    assert_clean(&browser, "portal endpoint").await;
    browser.screenshot(&setup.screenshot("portal-endpoint")).await;

    // A test event reaches the receiver, which fails it; the attempt shows its response.
    browser.wait_for("button[data-action=test-event]", "Send test event").await.click().await;
    browser.wait_for("h1", "Message order.created").await;
    let failed = browser.wait_for("tr[data-attempt-status=fail]", "500").await;
    assert!(failed.text().await.contains("temporarily down"), "{}", failed.text().await);
    let arrived = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(arrived[0].path, "/hooks");
    assert!(String::from_utf8_lossy(&arrived[0].body).contains(r#""test":true"#));
    browser.wait_for("tr[data-attempt-status=fail] a", "").await.click().await;
    browser.wait_for("#response-body", "temporarily down: try again later").await;
    browser.wait_for("h1", "Attempt to Orders").await;
    browser.wait_for("main td", arrived[0].header("webhook-id")).await;
    assert_clean(&browser, "portal attempt").await;
    browser.screenshot(&setup.screenshot("portal-attempt")).await;

    // Resending from the attempt: a second, manual attempt succeeds and shows its response.
    browser.wait_for("button[data-action=resend]", "Resend").await.click().await;
    let resent = browser.wait_for("tr[data-attempt-status=success]", "200").await;
    let row = resent.text().await;
    assert!(row.contains(r#"{"received":true}"#) && row.contains("Manual"), "{row}");
    let arrived = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(arrived[1].header("webhook-id"), arrived[0].header("webhook-id"), "the same message again");
    browser.wait_for("tr[data-destination-status=success]", "").await;
    assert_clean(&browser, "portal message").await;
    browser.screenshot(&setup.screenshot("portal-message")).await;

    // The list shows the endpoint with its counts; on a phone-sized screen too.
    go(&browser, "#/").await;
    browser.wait_for("h1", "Endpoints").await;
    browser.wait_for("tbody tr", "Orders").await;
    browser.screenshot(&setup.screenshot("portal-endpoints")).await;
    browser.set_window_size(390, 844).await;
    browser.wait_for("h1", "Endpoints").await;
    let overflow =
        browser.run("return document.documentElement.scrollWidth - window.innerWidth", json!([])).await;
    assert!(overflow.as_i64().unwrap_or(0) <= 0, "the page scrolls sideways on a narrow screen: {overflow}");
    browser.screenshot(&setup.screenshot("portal-narrow")).await;
    browser.set_window_size(1280, 860).await;

    // Editing: subscribe to a second event type; ordered delivery that pauses, and consent off
    // (the endpoint's own setting instead of the server's).
    go(&browser, &format!("#/endpoints/{endpoint}/edit")).await;
    browser.wait_for("h1", "Edit endpoint").await;
    browser.wait_for("label.check", "order.shipped").await.click().await;
    browser.wait_for("label.check", "Ordered delivery").await.click().await;
    let choose = "document.querySelector('select[name=orderedOnExhausted]').value = 'pause';\
        document.querySelector('select[name=consent]').value = 'off';";
    browser.run(choose, json!([])).await;
    browser.wait_for("button[type=submit]", "Save changes").await.click().await;
    browser.wait_for("dd", "order.created, order.shipped").await;
    let saved = world.server.get(&format!("/api/v1/app/acme/endpoint/{endpoint}")).await;
    assert_eq!(saved.body["eventTypes"], json!(["order.created", "order.shipped"]));
    let settings = ["ordered", "orderedOnExhausted", "consent"].map(|key| saved.body[key].clone());
    assert_eq!(settings, [json!(true), json!("pause"), json!("off")], "{:?}", saved.body);
    // The form shows them as saved; back to the server's consent setting.
    go(&browser, &format!("#/endpoints/{endpoint}/edit")).await;
    browser.wait_for("h1", "Edit endpoint").await;
    let shown = browser
        .run(
            "return ['#ep-ordered', 'select[name=orderedOnExhausted]', 'select[name=consent]']\
               .map((css) => { const e = document.querySelector(css); return e.type === 'checkbox' ? e.checked : e.value; })",
            json!([]),
        )
        .await;
    assert_eq!(shown, json!([true, "pause", "off"]));
    browser.run("document.querySelector('select[name=consent]').value = ''", json!([])).await;
    browser.wait_for("button[type=submit]", "Save changes").await.click().await;
    browser.wait_for("dd", "order.created, order.shipped").await;
    let saved = world.server.get(&format!("/api/v1/app/acme/endpoint/{endpoint}")).await;
    assert_eq!(saved.body["consent"], json!(null), "{:?}", saved.body);

    // Versions: order.created gains version 2 (a converter back to 1); pinned to 1, the
    // customer previews version 2 of the latest message, then moves to it.
    let converter = "function convert(p) { p.legacy = true; delete p.v2; return p; }";
    let registered = world
        .server
        .put(
            "/api/v1/event-type/order.created",
            json!({"description": "An order", "schemas": {"1": {}, "2": {}}, "converters": {"2": converter}}),
        )
        .await;
    assert!(registered.status.is_success(), "{:?}", registered.body);
    world
        .server
        .patch(&format!("/api/v1/app/acme/endpoint/{endpoint}"), json!({"payloadVersion": "1"}))
        .await;
    let before = receiver.received().len();
    world
        .server
        .post("/api/v1/app/acme/msg", json!({"eventType": "order.created", "payload": {"v2": true}}))
        .await;
    let arrived = receiver.wait_for(before + 1, Duration::from_secs(10)).await;
    assert_eq!(arrived[before].header("herald-payload-version"), "1");
    // Away and back, so the endpoint's page is read again.
    go(&browser, "#/").await;
    browser.wait_for("h1", "Endpoints").await;
    go(&browser, &format!("#/endpoints/{endpoint}")).await;
    browser.wait_for("dd", "Pinned to version 1").await;
    browser.wait_for("button[data-action=preview-version]", "Preview version 2").await.click().await;
    browser.wait_for("#version-preview", r#""v2": true"#).await;
    browser.run("window.confirm = () => true", json!([])).await;
    browser.wait_for("button[data-action=upgrade-version]", "Upgrade to version 2").await.click().await;
    browser.wait_for("dd", "Pinned to version 2").await;
    let moved = world.server.get(&format!("/api/v1/app/acme/endpoint/{endpoint}")).await;
    assert_eq!(moved.body["payloadVersion"], "2");
    // Testing the receiver: one example per subscribed event type, to this endpoint alone.
    let before = receiver.received().len();
    browser.wait_for("button[data-action=test-all]", "Test every event type").await.click().await;
    let arrived = receiver.wait_for(before + 2, Duration::from_secs(10)).await;
    let mut tested: Vec<String> = arrived[before..]
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).map(|_| r.path.clone()).unwrap_or_default())
        .collect();
    tested.dedup();
    assert_eq!(tested, vec!["/hooks".to_owned()]);
    assert_clean(&browser, "portal versions").await;
    browser.screenshot(&setup.screenshot("portal-versions")).await;

    // Another customer's data is out of reach, through the page and through the API.
    go(&browser, &format!("#/endpoints/{other}")).await;
    browser.wait_for("[role=alert]", "endpoint not found").await;
    let probe = "const done = arguments[arguments.length - 1];\
        const { token } = JSON.parse(sessionStorage.getItem('herald.portal'));\
        Promise.all(arguments[0].map((p) => fetch(p, { headers: { Authorization: 'Bearer ' + token } }).then((r) => r.status))).then(done);";
    let statuses = browser
        .run_async(
            probe,
            json!([["/api/v1/app/acme", "/api/v1/app/globex", "/api/v1/app/globex/endpoint", "/api/v1/app"]]),
        )
        .await;
    assert_eq!(statuses, json!([200, 404, 404, 403]));
    assert!(!browser.main_text().await.contains("Globex"));
    assert_ne!(token, ADMIN_TOKEN);

    // Embedded in a customer's own page (another origin), the portal works in its iframe.
    let (embedded, _) = world.portal("acme").await;
    let site = serve_page(format!(
        r#"<!doctype html><title>Acme settings</title><h1>Your webhooks</h1>
           <iframe id="portal" title="Webhooks" src="{embedded}" width="1100" height="640"></iframe>"#
    ))
    .await;
    browser.goto(&site).await;
    let frame = browser.wait_for("#portal", "").await;
    browser.enter_frame(&frame).await;
    browser.wait_for("#app-name", "Acme Inc").await;
    browser.wait_for("tbody tr", "Orders").await;
    browser.leave_frame().await;
    browser.goto(&format!("{}#/endpoints/{endpoint}", world.server.url("/portal"))).await;

    // Deleting the endpoint leaves the empty list.
    go(&browser, &format!("#/endpoints/{endpoint}")).await;
    browser.wait_for("h1", "Orders").await;
    browser.run("window.confirm = () => true", json!([])).await;
    browser.wait_for("button.danger", "Delete").await.click().await;
    browser.wait_for(".empty", "No endpoints yet").await;
    let left = world.server.get("/api/v1/app/acme/endpoint").await;
    assert_eq!(left.body["data"], json!([]));
    assert_clean(&browser, "portal after delete").await;

    // The page can't turn text into markup: Trusted Types refuse HTML strings.
    let sink = browser
        .run(
            "let verdict; try { document.createElement('div').innerHTML = '<b>x</b>'; verdict = 'allowed'; } \
             catch (e) { verdict = 'refused'; } return verdict;",
            json!([]),
        )
        .await;
    assert_eq!(sink, "refused");
    browser.quit().await;
}
