//! The real `herald serve` binary stopped in the middle of a run, then restarted on the same
//! data directory: after `kill -9` every accepted message is still delivered (at least once),
//! and after SIGTERM the process exits cleanly, loses nothing and does not repeat deliveries
//! that completed. Every child process is bounded in time and killed when a test fails; the
//! server and the receiver listen on loopback only.

use crate::receiver::{Receiver, Reply};
use std::collections::HashSet;
use std::os::unix::process::ExitStatusExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::process::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_message_is_delivered_after_a_sigkill_mid_run() {
    const MESSAGES: usize = 500;
    /// Messages that arrive, and POSTs that are accepted, before the kill.
    const KILL_AFTER: usize = 50;
    const KILL_AFTER_ACCEPTED: usize = 350;
    let work = tempfile::tempdir().expect("tempdir");
    let data_dir = work.path().join("data");
    let receiver = Receiver::start().await;
    // A little slow, so deliveries are in flight when the process dies.
    receiver.always(Reply::Delay(Duration::from_millis(100)));
    let client = client();

    let mut served = Served::start(work.path(), &data_dir, &[]);
    served.wait_healthy().await;
    create_app_and_endpoint(&client, &served, &receiver).await;

    let permits = Arc::new(Semaphore::new(32));
    let accepted_so_far = Arc::new(AtomicUsize::new(0));
    let mut posts = JoinSet::new();
    for i in 0..MESSAGES {
        let (client, base_url) = (client.clone(), served.base_url.clone());
        let (permits, accepted_so_far) = (permits.clone(), accepted_so_far.clone());
        posts.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore open");
            let outcome = post_message(&client, &base_url, i).await;
            if matches!(outcome, Posted::Accepted(_)) {
                accepted_so_far.fetch_add(1, Ordering::SeqCst);
            }
            outcome
        });
    }

    // Kill once some, but not all, messages have been delivered, and most POSTs have been
    // accepted (the rest are usually still under way, and fail).
    let deadline = Instant::now() + BOUND;
    while arrivals(&receiver).len() < KILL_AFTER
        || accepted_so_far.load(Ordering::SeqCst) < KILL_AFTER_ACCEPTED
    {
        assert!(
            Instant::now() < deadline,
            "within {BOUND:?} only {} messages arrived and {} POSTs were accepted; stderr:\n{}",
            receiver.count(),
            accepted_so_far.load(Ordering::SeqCst),
            served.stderr_tail()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    served.signal("-9");
    let status = served.wait_exit(BOUND).await;
    assert_eq!(status.signal(), Some(9), "the process died of SIGKILL: {status}");
    let delivered_before_kill: HashSet<String> = arrivals(&receiver).into_keys().collect();

    let mut accepted = HashSet::new();
    let mut failed = 0;
    while let Some(joined) = posts.join_next().await {
        match joined.expect("the post task did not panic") {
            Posted::Accepted(id) => assert!(accepted.insert(id), "message ids are unique"),
            Posted::Refused(status, body) => panic!("a message POST was answered {status}: {body}"),
            Posted::Failed => failed += 1,
        }
    }
    let undelivered = accepted.difference(&delivered_before_kill).count();
    assert!(
        undelivered > 0,
        "the kill came after every accepted message was delivered ({} accepted, {} delivered): \
         nothing was left for the restart to do",
        accepted.len(),
        delivered_before_kill.len()
    );

    let mut restarted = Served::start(work.path(), &data_dir, &[]);
    restarted.wait_healthy().await;
    let counts = wait_until_all_arrived(&receiver, &accepted, &restarted).await;

    let duplicated: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    let context = format!(
        "{} POSTs accepted, {failed} cut off by the kill; {} ids delivered before the kill, {undelivered} \
         accepted ids still undelivered at the kill; {} requests arrived in all, {} ids more than once",
        accepted.len(),
        delivered_before_kill.len(),
        receiver.count(),
        duplicated.len(),
    );
    // At least once: duplicates come only from deliveries leased when the process died (sent,
    // or sent and not yet recorded), and a lane holds at most two rounds of the endpoint's
    // concurrency.
    assert!(duplicated.len() <= 2 * ENDPOINT_CONCURRENCY, "too many duplicates: {context}");
    assert!(
        duplicated.iter().all(|(_, n)| **n == 2),
        "an id arrived more than twice: {duplicated:?}; {context}"
    );
    eprintln!("kill -9 mid-run: {context}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_attempts_in_flight_finish_and_a_restart_delivers_the_rest_once() {
    /// Messages sent before the SIGTERM, while deliveries are slow.
    const FIRST_BATCH: usize = 100;
    /// The receiver's delay: attempts in flight at the SIGTERM finish well within the grace.
    const RECEIVER_DELAY: Duration = Duration::from_millis(300);
    let work = tempfile::tempdir().expect("tempdir");
    let data_dir = work.path().join("data");
    let receiver = Receiver::start().await;
    receiver.always(Reply::Delay(RECEIVER_DELAY));
    let client = client();
    let env = [("HERALD_SHUTDOWN_GRACE", "10s")];

    let mut served = Served::start(work.path(), &data_dir, &env);
    served.wait_healthy().await;
    create_app_and_endpoint(&client, &served, &receiver).await;

    let mut accepted = HashSet::new();
    let mut first = JoinSet::new();
    let permits = Arc::new(Semaphore::new(16));
    for i in 0..FIRST_BATCH {
        let (client, base_url, permits) = (client.clone(), served.base_url.clone(), permits.clone());
        first.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore open");
            post_message(&client, &base_url, i).await
        });
    }
    while let Some(joined) = first.join_next().await {
        match joined.expect("the post task did not panic") {
            Posted::Accepted(id) => assert!(accepted.insert(id)),
            other => panic!("a message POST before the SIGTERM failed: {other:?}"),
        }
    }

    // More messages keep coming while the server stops: four posters, each until the server
    // no longer answers.
    let racing = Arc::new(AtomicUsize::new(0));
    let mut posters = JoinSet::new();
    for poster in 0..4 {
        let (client, base_url, racing) = (client.clone(), served.base_url.clone(), racing.clone());
        posters.spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..100_000 {
                let outcome = post_message(&client, &base_url, FIRST_BATCH + poster * 100_000 + i).await;
                let stop = matches!(outcome, Posted::Failed);
                if matches!(outcome, Posted::Accepted(_)) {
                    racing.fetch_add(1, Ordering::SeqCst);
                }
                outcomes.push(outcome);
                if stop {
                    break;
                }
            }
            outcomes
        });
    }

    // SIGTERM while deliveries are in flight (the first batch is being answered slowly) and
    // the posters are sending.
    let deadline = Instant::now() + BOUND;
    while receiver.count() < 10 || racing.load(Ordering::SeqCst) < 20 {
        assert!(
            Instant::now() < deadline,
            "no deliveries or posts within {BOUND:?}; stderr:\n{}",
            served.stderr_tail()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let arrived_before_term: HashSet<String> = arrivals(&receiver).into_keys().collect();
    let signalled = Instant::now();
    served.signal("-TERM");
    let status = served.wait_exit(BOUND).await;
    let took = signalled.elapsed();
    assert!(
        status.success(),
        "herald serve exits successfully on SIGTERM, got {status}; stderr:\n{}",
        served.stderr_tail()
    );
    let arrivals_at_exit = receiver.count();

    let mut during_shutdown = 0;
    while let Some(joined) = posters.join_next().await {
        for outcome in joined.expect("the poster did not panic") {
            match outcome {
                Posted::Accepted(id) => {
                    during_shutdown += 1;
                    assert!(accepted.insert(id));
                }
                Posted::Refused(status, body) => panic!("a message POST was answered {status}: {body}"),
                Posted::Failed => {}
            }
        }
    }
    assert!(
        accepted.iter().any(|id| !arrived_before_term.contains(id)),
        "every message had arrived before the SIGTERM: nothing was left for the restart to do"
    );

    let mut restarted = Served::start(work.path(), &data_dir, &env);
    restarted.wait_healthy().await;
    let counts = wait_until_all_arrived(&receiver, &accepted, &restarted).await;

    let repeated: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    let context = format!(
        "{} messages accepted ({during_shutdown} by posters racing the SIGTERM); {} had arrived when \
         SIGTERM was sent, {arrivals_at_exit} requests when the process exited {took:?} later; {} requests \
         in all after the restart, {} ids more than once: {repeated:?}",
        accepted.len(),
        arrived_before_term.len(),
        receiver.count(),
        repeated.len(),
    );
    assert!(counts.values().all(|n| *n <= 2), "a message arrived more than twice: {context}");
    // Attempts in flight at the SIGTERM take RECEIVER_DELAY, far less than the 10 s grace
    // period: they complete and are recorded before the process exits, so a restart does not
    // send them again.
    let resent: Vec<&String> = arrived_before_term.iter().filter(|id| counts[*id] > 1).collect();
    assert!(
        resent.is_empty(),
        "attempts completed during the graceful shutdown were sent again: {resent:?}; {context}"
    );
    eprintln!("SIGTERM mid-run: {context}");
}

/// The ingest gateway answers a provider only once the event is committed: events answered
/// 200 just before a `kill -9` are forwarded by the restarted process (their destination
/// refused everything before the kill, so every forward happens after it). On the suite's
/// backend (`HERALD_TEST_BACKEND=postgres` runs it on PostgreSQL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_an_ingest_url_answered_is_forwarded_after_a_sigkill() {
    const EVENTS: usize = 20;
    let work = tempfile::tempdir().expect("tempdir");
    let data_dir = work.path().join("data");
    let mut env: Vec<(&str, String)> = Vec::new();
    let mut schema = None;
    if crate::helpers::Backend::for_suite() == crate::helpers::Backend::Postgres {
        let (url, name) = crate::helpers::postgres_database(&data_dir).await;
        env.push(("HERALD_DATABASE_URL", url));
        env.push(("HERALD_ENCRYPTION_KEY", crate::helpers::TEST_ENCRYPTION_KEY.to_owned()));
        schema = Some(name);
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let receiver = Receiver::start().await;
    receiver.always(Reply::Status(503));
    let client = client();
    let mut served = Served::start(work.path(), &data_dir, &env);
    served.wait_healthy().await;
    let source: serde_json::Value = client
        .post(served.url("/ingest/api/v1/source"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"name": "Plain", "type": "generic-webhook"}))
        .send()
        .await
        .expect("create source")
        .json()
        .await
        .expect("source JSON");
    let id = source["id"].as_str().expect("source id");
    let destination = client
        .post(served.url(&format!("/ingest/api/v1/source/{id}/endpoint")))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"url": receiver.url("/dest")}))
        .send()
        .await
        .expect("create destination");
    assert!(destination.status().is_success());
    let url = source["ingestUrl"].as_str().expect("ingest URL").to_owned();

    let mut accepted = HashSet::new();
    for i in 0..EVENTS {
        let reply = client
            .post(&url)
            .header("webhook-id", format!("evt-{i}"))
            .header("content-type", "text/plain")
            .body(format!("event {i}"))
            .send()
            .await
            .expect("post event");
        assert_eq!(reply.status(), reqwest::StatusCode::OK);
        let body: serde_json::Value = reply.json().await.expect("answer JSON");
        accepted.insert(body["id"].as_str().expect("message id").to_owned());
    }
    served.signal("-9");
    let status = served.wait_exit(BOUND).await;
    assert_eq!(status.signal(), Some(9), "the process died of SIGKILL: {status}");
    assert!(receiver.received().iter().all(|r| r.path == "/dest"));

    receiver.always(Reply::Status(200));
    let mut restarted = Served::start(work.path(), &data_dir, &env);
    restarted.wait_healthy().await;
    let counts = wait_until_all_arrived(&receiver, &accepted, &restarted).await;
    assert_eq!(counts.len(), EVENTS, "every accepted event, and nothing else, arrived");
    if let Some(schema) = schema {
        crate::helpers::drop_schema(schema);
    }
    let bodies: HashSet<String> =
        receiver.received().iter().map(|r| String::from_utf8_lossy(&r.body).into_owned()).collect();
    assert!((0..EVENTS).all(|i| bodies.contains(&format!("event {i}"))));
}
