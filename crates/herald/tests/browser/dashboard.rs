//! The operator dashboard, as an operator uses it: sign in (refusing a customer's token), see
//! the overview (counts, the queue, failing and disabled endpoints first, applications by
//! health, charts of the deliveries), find an
//! application, filter attempts, disable and enable an endpoint, rotate its secret, recover
//! failures, and open a failed attempt and resend it.

use std::time::Duration;

use serde_json::json;

use crate::Setup;
use crate::helpers::ADMIN_TOKEN;
use crate::portal::{assert_clean, go};
use crate::receiver::{Receiver, Reply};
use crate::webdriver::Driver;
use crate::world::World;

pub async fn story(setup: &Setup, driver: &Driver) {
    let world = World::start().await;
    let healthy = Receiver::start().await;
    healthy.always(Reply::Body(200, r#"{"ok":true}"#.to_owned()));
    let failing = Receiver::start().await;
    failing.script((0..3).map(|_| Reply::Body(503, "down for maintenance".to_owned())));
    failing.always(Reply::Body(200, "back".to_owned()));
    let orders = world
        .endpoint("acme", json!({"url": healthy.url("/orders"), "description": "Order events", "eventTypes": ["order.created"]}))
        .await;
    let ops = world
        .endpoint("globex", json!({"url": failing.url("/ops"), "description": "Globex operations"}))
        .await;
    world
        .endpoint(
            "globex",
            json!({"url": failing.url("/old"), "description": "Old system", "disabled": true}),
        )
        .await;
    for order in 0..6 {
        world.send("acme", "order.created", json!({"orderId": 1000 + order, "total": "49.90"})).await;
    }
    for shipment in 0..3 {
        world.send("globex", "order.shipped", json!({"shipmentId": shipment})).await;
    }
    world.attempts("acme", &orders, 6).await;
    world.attempts("globex", &ops, 3).await;
    // One message for later: a delivery scheduled in the queue.
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let scheduled = world
        .server
        .post(
            "/api/v1/app/acme/msg",
            json!({"eventType": "order.created", "payload": {"orderId": 2000}, "deliverAt": later}),
        )
        .await;
    assert!(scheduled.status.is_success(), "{:?}", scheduled.body);
    let (_, customer_token) = world.portal("acme").await;
    let browser = setup.browser(driver).await;

    // Signing in: a customer's token and a wrong one are refused with the reason.
    browser.goto(&world.server.url("/ui")).await;
    browser.wait_for("h1", "Sign in").await;
    // Nobody is signed in yet: no "Sign out" (its `hidden` once lost to `.button`'s display).
    let sign_out =
        browser.run("return getComputedStyle(document.getElementById('sign-out')).display", json!([])).await;
    assert_eq!(sign_out, "none", "Sign out is shown on the sign-in screen");
    let token = browser.wait_for("#token", "").await;
    token.type_text(&customer_token).await;
    browser.wait_for("button[type=submit]", "Sign in").await.click().await;
    browser.wait_for("[role=alert]", "application token").await;
    token.type_text("sk_not_a_real_token").await;
    browser.wait_for("button[type=submit]", "Sign in").await.click().await;
    browser.wait_for("[role=alert]", "invalid token").await;
    token.type_text(ADMIN_TOKEN).await;
    browser.wait_for("button[type=submit]", "Sign in").await.click().await;

    // The overview: counts from the applications' stats and the /metrics gauges, the queue
    // (the message for later is scheduled), the disabled endpoint first, then the failing one
    // with its latest answer, applications by health, charts of the last day that say what
    // they are drawn from, and live rates once /metrics was read twice.
    browser.wait_for("h1", "Overview").await;
    let tiles = |selector: &str| {
        format!(
            "return Object.fromEntries([...document.querySelectorAll('{selector} [data-tile]')]\
             .map((t) => [t.dataset.tile, t.querySelector('.tile-value').textContent]))"
        )
    };
    let totals = browser.run(&tiles("#totals"), json!([])).await;
    let expected = json!({
        "applications": "2", "endpoints": "3", "failing": "1", "disabled": "1", "circuit-open": "0",
        "messages": "10", "attempts": "9", "success-rate": "67%",
    });
    assert_eq!(totals, expected);
    let queue = browser.run(&tiles("#queue"), json!([])).await;
    assert_eq!(queue["scheduled"], "1", "{queue}");
    assert_eq!(queue["due"], "0", "{queue}");
    assert_eq!(queue["leased"], "0", "{queue}");
    assert!(queue["oldest-due"].is_string(), "{queue}");
    let rows = browser
        .run(
            "return [...document.querySelectorAll('tr[data-endpoint-state]')].map((r) => r.innerText)",
            json!([]),
        )
        .await;
    let rows: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].contains("/old") && rows[0].contains("Disabled") && rows[0].contains("Globex"),
        "{rows:?}"
    );
    assert!(rows[1].contains("/ops") && rows[1].contains("Failing") && rows[1].contains("503"), "{rows:?}");
    assert!(!browser.main_text().await.contains(&healthy.url("/orders")), "healthy endpoints are not listed");
    let health = browser.wait_for("tr[data-app-health]", "").await.text().await;
    assert!(health.contains("Globex") && health.contains("0%"), "the troubled application first: {health}");
    browser.wait_for("#chart-scope", "9 of the 9 attempts").await;
    browser.wait_for("figcaption", "Attempts per hour").await;
    let bars = browser.run("return document.querySelectorAll('svg.chart rect').length", json!([])).await;
    assert!(bars.as_u64().unwrap_or(0) >= 2, "the attempts chart has bars: {bars}");
    browser.wait_for("figcaption", "Per second").await;
    assert_clean(&browser, "overview").await;
    browser.screenshot(&setup.screenshot("dashboard-overview")).await;

    // Applications: search narrows the list; opening one shows its endpoints and messages.
    browser.wait_for("nav a", "Applications").await.click().await;
    browser.wait_for("h1", "Applications").await;
    browser.wait_for("#app-search", "").await.type_text("glob").await;
    let visible = browser.run("return [...document.querySelectorAll('tbody tr')].filter((r) => !r.hidden).map((r) => r.innerText)", json!([])).await;
    assert_eq!(visible.as_array().unwrap().len(), 1, "{visible}");
    assert!(visible[0].as_str().unwrap().contains("Globex"));
    browser.wait_for("#app-search", "").await.type_text("").await;
    browser.screenshot(&setup.screenshot("dashboard-applications")).await;
    browser.wait_for("tbody a", "Acme Inc").await.click().await;
    browser.wait_for("h1", "Acme Inc").await;
    browser.wait_for("tbody a", "Order events").await;
    let messages = browser
        .run("return document.querySelectorAll('#s-messages ~ .table-wrap tbody tr').length", json!([]))
        .await;
    assert_eq!(messages, 7, "six sent and one for later");
    browser.screenshot(&setup.screenshot("dashboard-application")).await;

    // An endpoint: attempts filtered by status, disable and enable, rotate, recover.
    browser.wait_for("tbody a", "Order events").await.click().await;
    browser.wait_for("h1", "Order events").await;
    browser.wait_for("tr[data-attempt-status=success]", "200").await;
    browser.run("document.getElementById('f-status').value = 'fail'", json!([])).await;
    browser.wait_for("#f-apply", "Apply filters").await.click().await;
    browser.wait_for(".empty", "No attempts match these filters").await;
    browser.wait_for("#f-clear", "Clear").await.click().await;
    browser.wait_for("tr[data-attempt-status=success]", "200").await;
    let path = format!("/api/v1/app/acme/endpoint/{orders}");
    browser.wait_for("button[data-action=toggle]", "Disable").await.click().await;
    browser.wait_for(".page-title .badge", "Disabled").await;
    assert_eq!(world.server.get(&path).await.body["disabled"], true);
    browser.wait_for("button[data-action=toggle]", "Enable").await.click().await;
    browser.wait_for(".page-title .badge", "Enabled").await;
    assert_eq!(world.server.get(&path).await.body["disabled"], false);
    let before = world.server.get(&format!("{path}/secret")).await.body["key"].clone();
    browser.run("window.confirm = () => true", json!([])).await;
    browser.wait_for("button", "Rotate").await.click().await;
    browser.wait_for(".action-status", "New secret created").await;
    let after = world.server.get(&format!("{path}/secret")).await.body["key"].clone();
    assert_ne!(before, after);
    browser.wait_for("#secret-value", after.as_str().unwrap()).await;
    browser.wait_for("#secret-toggle", "Hide").await.click().await;
    browser.wait_for("button[data-action=recover]", "Recover").await.click().await;
    browser.wait_for(".action-status", "Recovery started").await;
    assert_clean(&browser, "endpoint").await;
    browser.screenshot(&setup.screenshot("dashboard-endpoint")).await;

    // A failed attempt: the request and the response, then a resend that succeeds.
    go(&browser, &format!("#/apps/{}/endpoints/{ops}", world.globex)).await;
    browser.wait_for("h1", "Globex operations").await;
    browser.wait_for("tr[data-attempt-status=fail] a", "").await.click().await;
    browser.wait_for("#response-body", "down for maintenance").await;
    browser.wait_for("main pre", "shipmentId").await;
    browser.wait_for(".badge", "503").await;
    assert_clean(&browser, "attempt").await;
    browser.screenshot(&setup.screenshot("dashboard-attempt")).await;
    browser.wait_for("button[data-action=resend]", "Resend").await.click().await;
    browser.wait_for("tr[data-attempt-status=success]", "back").await;
    failing.wait_for(4, Duration::from_secs(10)).await;
    browser.wait_for("tr[data-destination-status=success]", "").await;
    assert_clean(&browser, "message").await;
    browser.screenshot(&setup.screenshot("dashboard-message")).await;

    // Signing out forgets the token.
    browser.wait_for("#sign-out", "Sign out").await.click().await;
    browser.wait_for("h1", "Sign in").await;
    let kept = browser.run("return sessionStorage.getItem('herald.dashboard.token')", json!([])).await;
    assert!(kept.is_null(), "{kept}");
    browser.quit().await;
}
