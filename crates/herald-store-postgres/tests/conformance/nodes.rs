//! Checks of several Herald nodes sharing one database: each node is a store with a pool of
//! its own on the same schema, as two processes would be.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use herald_core::StoreError;
use herald_core::delivery::{
    Attempt, AttemptFilter, AttemptRecord, DeliveryStatus, LeaseRequest, LeasedDelivery, Message, NextStep,
};
use herald_core::id::{ApplicationId, AttemptId, EndpointId, MessageId};
use herald_core::model::{Application, Endpoint, EndpointKeys};
use herald_core::name::{EventId, EventTypeName};
use herald_core::store::{IdempotencyClaim, IdempotencyKey, MessageKey, PageRequest};
use herald_store_postgres::{NEW_WORK_CHANNEL, PostgresStore};
use sqlx::postgres::PgListener;

use crate::Check;
use crate::server::test_cipher;
use herald_core::store::{AttemptStore as _, QueueStore as _, ResourceStore as _};

pub(crate) fn checks() -> Vec<Check> {
    vec![
        Check {
            name: "two_nodes_never_lease_the_same_delivery",
            exclusive: false,
            run: |server| Box::pin(async move { two_nodes_never_lease_the_same_delivery(&server).await }),
        },
        Check {
            name: "two_nodes_deliver_an_ordered_lane_one_at_a_time_in_order",
            exclusive: false,
            run: |server| Box::pin(async move { two_nodes_keep_ordered_lanes(&server).await }),
        },
        Check {
            name: "a_lane_whose_node_died_mid_attempt_goes_on_from_the_same_head_on_another_node",
            exclusive: false,
            run: |server| Box::pin(async move { a_dead_nodes_lane_goes_on_elsewhere(&server).await }),
        },
        Check {
            name: "a_stale_node_cannot_record_after_another_node_re_leased",
            exclusive: false,
            run: |server| Box::pin(async move { stale_node_cannot_record(&server).await }),
        },
        Check {
            name: "concurrent_claims_of_one_idempotency_key_yield_one_claim",
            exclusive: false,
            run: |server| Box::pin(async move { concurrent_claims_yield_one_claim(&server).await }),
        },
        Check {
            name: "key_columns_sort_bytewise",
            exclusive: false,
            run: |server| Box::pin(async move { key_columns_sort_bytewise(&server).await }),
        },
        Check {
            name: "a_deadlock_victim_is_run_again_and_other_errors_are_not",
            exclusive: false,
            run: |server| Box::pin(async move { deadlock_victims_are_retried(&server).await }),
        },
        // Notification channels are database-wide; these look only at their own schema's
        // notifications (the payload names it), so other checks may run meanwhile.
        Check {
            name: "committed_new_work_is_announced_to_other_nodes",
            exclusive: false,
            run: |server| Box::pin(async move { new_work_is_announced(&server).await }),
        },
        Check {
            name: "a_node_wakes_for_its_own_schemas_work_only",
            exclusive: false,
            run: |server| Box::pin(async move { wakes_for_own_schema_only(&server).await }),
        },
    ]
}

pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

pub(crate) async fn application(store: &PostgresStore) -> ApplicationId {
    let at = now();
    let app = Application {
        id: ApplicationId::generate_at(at),
        uid: None,
        name: "nodes".to_owned(),
        metadata: BTreeMap::new(),
        throttle_rate: None,
        created_at: at,
        updated_at: at,
    };
    store.insert_application(&app).await.unwrap();
    app.id
}

/// An endpoint of `app` that takes every message.
pub(crate) async fn endpoint(store: &PostgresStore, app: &ApplicationId) -> EndpointId {
    let at = now();
    let endpoint = Endpoint {
        id: EndpointId::generate_at(at),
        app_id: app.clone(),
        uid: None,
        url: "https://example.com/hook".parse().unwrap(),
        description: String::new(),
        disabled: false,
        event_types: None,
        channels: None,
        throttle_rate: None,
        metadata: BTreeMap::new(),
        keys: EndpointKeys::new(None),
        headers: BTreeMap::new(),
        bearer_token: None,
        ordered: false,
        ordered_on_exhausted: Default::default(),
        consent: None,
        consent_state: None,
        payload_version: None,
        transformation: Default::default(),
        created_at: at,
        updated_at: at,
    };
    store.insert_endpoint(&endpoint).await.unwrap();
    endpoint.id
}

pub(crate) fn message(app: &ApplicationId) -> Message {
    let at = now();
    Message {
        id: MessageId::generate_at(at),
        app_id: app.clone(),
        event_type: EventTypeName::parse("node.test").unwrap(),
        event_id: None,
        channels: None,
        payload: Some(b"{}".to_vec()),
        created_at: at,
        deliver_at: None,
        payload_expires_at: at + Duration::days(1),
        ordering_key: None,
        payload_version: herald_core::version::PayloadVersion::FIRST,
        envelope: None,
    }
}

pub(crate) fn lease_request(
    at: DateTime<Utc>,
    limit: u32,
    per_endpoint: u32,
    lease: Duration,
) -> LeaseRequest {
    LeaseRequest { now: at, limit, per_endpoint, exclude: Vec::new(), lease_until: at + lease }
}

fn delivered(leased: &LeasedDelivery, at: DateTime<Utc>) -> AttemptRecord {
    AttemptRecord {
        delivery_id: leased.delivery_id,
        lease_id: leased.lease_id,
        attempt: Attempt {
            id: AttemptId::generate(),
            msg_id: leased.msg_id.clone(),
            app_id: leased.app_id.clone(),
            endpoint_id: leased.endpoint_id.clone(),
            url: "https://example.com/hook".to_owned(),
            status: DeliveryStatus::Success,
            response_status_code: 200,
            response: "ok".to_owned(),
            response_duration_ms: 3,
            trigger: leased.trigger,
            created_at: at,
            request: None,
        },
        next: NextStep::Delivered,
        disable_endpoint: false,
    }
}

/// Leases in a loop until a call comes back empty; returns every call's result.
async fn lease_until_empty(store: PostgresStore, request: LeaseRequest) -> Vec<Vec<LeasedDelivery>> {
    let mut calls = Vec::new();
    loop {
        let leased = store.lease_deliveries(&request).await.unwrap();
        if leased.is_empty() {
            return calls;
        }
        calls.push(leased);
    }
}

/// Asserts a call's bounds, and that no delivery was leased twice across all calls.
fn check_calls(calls: &[Vec<LeasedDelivery>], request: &LeaseRequest) -> HashSet<i64> {
    let mut seen = HashSet::new();
    let mut lease_ids = HashSet::new();
    for call in calls {
        assert!(call.len() <= request.limit as usize, "a call leased {} > limit", call.len());
        let mut per_endpoint: HashMap<&EndpointId, u32> = HashMap::new();
        for leased in call {
            *per_endpoint.entry(&leased.endpoint_id).or_default() += 1;
            assert!(seen.insert(leased.delivery_id), "delivery {} was leased twice", leased.delivery_id);
        }
        assert!(per_endpoint.values().all(|n| *n <= request.per_endpoint), "per-endpoint share exceeded");
        let ids: HashSet<i64> = call.iter().map(|l| l.lease_id).collect();
        assert_eq!(ids.len(), 1, "one lease id per call");
        assert!(lease_ids.insert(call[0].lease_id), "a lease id was handed out twice");
    }
    seen
}

/// Four workers on two nodes lease and settle an ordered endpoint's three lanes as fast as
/// they can: at any moment at most one delivery of a lane is leased, and each lane's messages
/// are settled in the order they were accepted.
async fn two_nodes_keep_ordered_lanes(server: &crate::server::Server) {
    const KEYS: usize = 3;
    const PER_KEY: usize = 15;
    let schema = server.schema().await;
    let cipher = test_cipher();
    let nodes = [schema.store_with(cipher.clone()).await, schema.store_with(cipher).await];
    let app = application(&nodes[0]).await;
    let endpoint_id = endpoint(&nodes[0], &app).await;
    let ordered = herald_core::change::EndpointChange { ordered: Some(true), ..Default::default() };
    nodes[0].update_endpoint(&app, &endpoint_id, &ordered, now()).await.unwrap().unwrap();
    let mut accepted: HashMap<String, Vec<MessageId>> = HashMap::new();
    for n in 0..KEYS * PER_KEY {
        let key = format!("k{}", n % KEYS);
        let mut m = message(&app);
        m.ordering_key = Some(herald_core::name::OrderingKey::parse(&key).unwrap());
        nodes[n % 2].insert_message(&m).await.unwrap();
        accepted.entry(key).or_default().push(m.id);
    }
    let lane_of: HashMap<MessageId, String> =
        accepted.iter().flat_map(|(key, ids)| ids.iter().map(move |id| (id.clone(), key.clone()))).collect();

    // Shared log of (lane, message) in the order deliveries were leased, and the lanes leased now.
    let in_flight = std::sync::Arc::new(std::sync::Mutex::new(HashSet::<String>::new()));
    let settled = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, MessageId)>::new()));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (store, in_flight, settled, lane_of) =
            (nodes[worker % 2].clone(), in_flight.clone(), settled.clone(), lane_of.clone());
        workers.push(tokio::spawn(async move {
            let mut idle = 0;
            while idle < 20 {
                let at = now() + Duration::seconds(1);
                let leased =
                    store.lease_deliveries(&lease_request(at, 10, 10, Duration::minutes(5))).await.unwrap();
                if leased.is_empty() {
                    idle += 1;
                    tokio::time::sleep(StdDuration::from_millis(5)).await;
                    continue;
                }
                idle = 0;
                for lease in &leased {
                    let lane = lane_of[&lease.msg_id].clone();
                    assert!(lease.in_lane);
                    assert!(
                        in_flight.lock().unwrap().insert(lane.clone()),
                        "two deliveries of lane {lane} leased at once"
                    );
                }
                for lease in leased {
                    let lane = lane_of[&lease.msg_id].clone();
                    settled.lock().unwrap().push((lane.clone(), lease.msg_id.clone()));
                    in_flight.lock().unwrap().remove(&lane);
                    assert!(store.record_attempt(&delivered(&lease, now())).await.unwrap());
                }
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let settled = settled.lock().unwrap().clone();
    assert_eq!(settled.len(), KEYS * PER_KEY, "every message delivered once");
    for (key, ids) in &accepted {
        let order: Vec<MessageId> =
            settled.iter().filter(|(lane, _)| lane == key).map(|(_, id)| id.clone()).collect();
        assert_eq!(&order, ids, "lane {key} delivered in the order accepted");
    }
}

/// A node leases a lane's head and dies mid-attempt: while its lease lasts the other node
/// leases nothing of that lane (however often it asks); when it expires, the other node takes
/// the same head, and the lane goes on in order from there. The dead node's late record is
/// refused.
async fn a_dead_nodes_lane_goes_on_elsewhere(server: &crate::server::Server) {
    let schema = server.schema().await;
    let cipher = test_cipher();
    let nodes = [schema.store_with(cipher.clone()).await, schema.store_with(cipher).await];
    let app = application(&nodes[0]).await;
    let endpoint_id = endpoint(&nodes[0], &app).await;
    let ordered = herald_core::change::EndpointChange { ordered: Some(true), ..Default::default() };
    nodes[0].update_endpoint(&app, &endpoint_id, &ordered, now()).await.unwrap().unwrap();
    let mut lane = Vec::new();
    for n in 0..3 {
        let mut m = message(&app);
        m.ordering_key = Some(herald_core::name::OrderingKey::parse("k").unwrap());
        nodes[n % 2].insert_message(&m).await.unwrap();
        lane.push(m.id);
    }
    let t = now() + Duration::seconds(1);
    let lease = Duration::seconds(30);
    let dead = nodes[0].lease_deliveries(&lease_request(t, 10, 10, lease)).await.unwrap();
    assert_eq!(dead.iter().map(|l| &l.msg_id).collect::<Vec<_>>(), vec![&lane[0]]);
    // The other node asks, from several tasks at once, all through the dead node's lease.
    let mut askers = Vec::new();
    for task in 0..4 {
        let node = nodes[1].clone();
        askers.push(tokio::spawn(async move {
            let mut leased = Vec::new();
            for second in (task..30).step_by(4) {
                let at = t + Duration::seconds(second);
                leased.extend(node.lease_deliveries(&lease_request(at, 10, 10, lease)).await.unwrap());
            }
            leased
        }));
    }
    for asker in askers {
        assert!(asker.await.unwrap().is_empty(), "nothing of the lane while its head's lease lasts");
    }
    let mut settled = Vec::new();
    let mut at = t + lease;
    let taken = nodes[1].lease_deliveries(&lease_request(at, 10, 10, lease)).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(
        (&taken[0].msg_id, taken[0].attempt),
        (&lane[0], 1),
        "the same head, its lost attempt not counted"
    );
    assert!(
        !nodes[0].record_attempt(&delivered(&dead[0], at)).await.unwrap(),
        "the dead node's record is refused"
    );
    let mut next = taken;
    while let Some(head) = next.pop() {
        assert!(next.is_empty(), "one delivery of the lane at a time");
        assert!(nodes[1].record_attempt(&delivered(&head, at)).await.unwrap());
        settled.push(head.msg_id);
        at += Duration::seconds(1);
        next = nodes[settled.len() % 2].lease_deliveries(&lease_request(at, 10, 10, lease)).await.unwrap();
    }
    assert_eq!(settled, lane, "the lane went on in order from the same head");
}

async fn two_nodes_never_lease_the_same_delivery(server: &crate::server::Server) {
    const ENDPOINTS: usize = 8;
    const MESSAGES: usize = 40;
    const TASKS_PER_NODE: usize = 3;
    let schema = server.schema().await;
    let cipher = test_cipher();
    let nodes = [schema.store_with(cipher.clone()).await, schema.store_with(cipher).await];
    let app = application(&nodes[0]).await;
    for _ in 0..ENDPOINTS {
        endpoint(&nodes[0], &app).await;
    }
    for i in 0..MESSAGES {
        nodes[i % 2].insert_message(&message(&app)).await.unwrap();
    }
    let total = ENDPOINTS * MESSAGES;

    // Phase 1: six workers on two nodes lease everything at once.
    let at = now();
    let request = lease_request(at, 9, 2, Duration::minutes(10));
    let mut workers = Vec::new();
    for node in &nodes {
        for _ in 0..TASKS_PER_NODE {
            workers.push(tokio::spawn(lease_until_empty(node.clone(), request.clone())));
        }
    }
    let mut calls = Vec::new();
    for worker in workers {
        calls.extend(worker.await.unwrap());
    }
    // A worker stops at its first empty call, which SKIP LOCKED may give it while others hold
    // rows for a moment; whatever is left is leased now, alone.
    calls.extend(lease_until_empty(nodes[0].clone(), request.clone()).await);
    let leased: Vec<LeasedDelivery> = calls.iter().flatten().cloned().collect();
    let seen = check_calls(&calls, &request);
    assert_eq!(seen.len(), total, "every due delivery was leased exactly once");

    // Phase 2: the leases expire. Node 0 (stale) records outcomes under its old leases while
    // node 1 re-leases the same deliveries: for each delivery exactly one of them wins.
    let later = at + Duration::minutes(11);
    let stale = {
        let store = nodes[0].clone();
        let leased = leased.clone();
        tokio::spawn(async move {
            let mut recorded = HashSet::new();
            for lease in &leased {
                if store.record_attempt(&delivered(lease, later)).await.unwrap() {
                    recorded.insert(lease.delivery_id);
                }
            }
            recorded
        })
    };
    let re_request = lease_request(later, 9, 2, Duration::minutes(10));
    let fresh = tokio::spawn(lease_until_empty(nodes[1].clone(), re_request.clone()));
    let recorded = stale.await.unwrap();
    let mut re_calls = fresh.await.unwrap();
    re_calls.extend(lease_until_empty(nodes[1].clone(), re_request.clone()).await);
    let re_leased = check_calls(&re_calls, &re_request);
    assert!(recorded.is_disjoint(&re_leased), "a delivery was both recorded stale and re-leased");
    assert_eq!(recorded.len() + re_leased.len(), total, "every delivery was recorded or re-leased");
    for call in &re_calls {
        for lease in call {
            assert_eq!(lease.attempt, 1, "an expired lease's attempt is not counted");
            assert!(!leased.iter().any(|old| old.lease_id == lease.lease_id), "re-leases get new ids");
        }
    }
    for node in &nodes {
        node.close().await;
    }
}

async fn stale_node_cannot_record(server: &crate::server::Server) {
    let schema = server.schema().await;
    let cipher = test_cipher();
    let (node_a, node_b) = (schema.store_with(cipher.clone()).await, schema.store_with(cipher).await);
    let app = application(&node_a).await;
    endpoint(&node_a, &app).await;
    let msg = message(&app);
    node_a.insert_message(&msg).await.unwrap();

    let at = now();
    let first = node_a.lease_deliveries(&lease_request(at, 10, 10, Duration::seconds(1))).await.unwrap();
    assert_eq!(first.len(), 1);
    let later = at + Duration::seconds(2);
    assert!(
        node_a.lease_deliveries(&lease_request(at, 10, 10, Duration::seconds(1))).await.unwrap().is_empty()
    );
    let second = node_b.lease_deliveries(&lease_request(later, 10, 10, Duration::seconds(60))).await.unwrap();
    assert_eq!(second.len(), 1, "the expired lease is taken over by the other node");
    assert_eq!(second[0].delivery_id, first[0].delivery_id);
    assert_ne!(second[0].lease_id, first[0].lease_id);
    assert_eq!(second[0].attempt, 1);

    assert!(
        !node_a.record_attempt(&delivered(&first[0], later)).await.unwrap(),
        "the stale node records nothing"
    );
    assert!(!node_a.release_lease(first[0].delivery_id, first[0].lease_id, later).await.unwrap());
    let current = delivered(&second[0], later);
    assert!(node_b.record_attempt(&current).await.unwrap());
    let attempts = node_a
        .list_attempts_by_message(&app, &msg.id, None, &AttemptFilter::default(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(attempts.items, vec![current.attempt]);
    assert_eq!(node_a.next_due_at().await.unwrap(), None);
    node_a.close().await;
    node_b.close().await;
}

async fn concurrent_claims_yield_one_claim(server: &crate::server::Server) {
    const CLAIMS_PER_NODE: usize = 8;
    let schema = server.schema().await;
    let nodes = [schema.store().await, schema.store().await];
    let t0 = now();
    let lease = Duration::minutes(2);
    // A new key, and a key whose earlier claim expired: both are claimed exactly once.
    let expired = IdempotencyKey("expired".to_owned());
    nodes[0].claim_idempotency_key(&expired, t0 - lease * 2, t0 - lease).await.unwrap();
    for key in [IdempotencyKey("fresh".to_owned()), expired] {
        let mut claims = Vec::new();
        for node in &nodes {
            for _ in 0..CLAIMS_PER_NODE {
                let (node, key) = (node.clone(), key.clone());
                claims.push(tokio::spawn(
                    async move { node.claim_idempotency_key(&key, t0, t0 + lease).await },
                ));
            }
        }
        let mut outcomes = Vec::new();
        for claim in claims {
            outcomes.push(claim.await.unwrap().unwrap());
        }
        let claimed = outcomes.iter().filter(|o| **o == IdempotencyClaim::Claimed).count();
        let in_progress = outcomes.iter().filter(|o| **o == IdempotencyClaim::InProgress).count();
        assert_eq!((claimed, in_progress), (1, 2 * CLAIMS_PER_NODE - 1), "key {key:?}: {outcomes:?}");
    }
    for node in &nodes {
        node.close().await;
    }
}

/// Paged keys must compare bytes whatever the database's default collation, or keyset paging
/// skips and repeats ids ("app_a…" and "app_B…" swap places in a natural-language collation).
async fn key_columns_sort_bytewise(server: &crate::server::Server) {
    let schema = server.schema().await;
    let store = schema.store().await;
    let keys = [
        ("applications", "id"),
        ("applications", "uid"),
        ("endpoints", "id"),
        ("endpoints", "uid"),
        ("event_types", "name"),
        ("messages", "id"),
        ("deliveries", "endpoint_id"),
        ("attempts", "id"),
    ];
    for (table, column) in keys {
        let collation: Option<String> = sqlx::query_scalar(
            "SELECT collation_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2",
        )
        .bind(table)
        .bind(column)
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(collation.as_deref(), Some("C"), "{table}.{column}");
    }
    store.close().await;
}

/// PostgreSQL's own errors, raised on purpose: a deadlock victim (40P01) and a serialization
/// failure (40001) run again until they succeed; another error is returned at once.
async fn deadlock_victims_are_retried(server: &crate::server::Server) {
    let schema = server.schema().await;
    let store = schema.store().await;
    let raise = |code: &'static str| {
        let pool = store.pool().clone();
        async move {
            let sql =
                format!("DO $$ BEGIN RAISE EXCEPTION 'raised by the test' USING ERRCODE = '{code}'; END $$");
            sqlx::query(&sql).execute(&pool).await.map(|_| ()).map_err(|e| StoreError::Backend(Box::new(e)))
        }
    };
    for transient in ["40P01", "40001"] {
        let runs = std::sync::atomic::AtomicU32::new(0);
        let result = herald_store_postgres::retry_transient(|| {
            let run = runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let attempt = raise(transient);
            async move { if run < 2 { attempt.await.map(|()| "unreachable") } else { Ok("done") } }
        })
        .await;
        assert_eq!(result.unwrap(), "done", "{transient}");
        assert_eq!(
            runs.load(std::sync::atomic::Ordering::SeqCst),
            3,
            "{transient}: two aborted runs, then one that succeeded"
        );
    }
    let runs = std::sync::atomic::AtomicU32::new(0);
    let result = herald_store_postgres::retry_transient(|| {
        runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        raise("22012")
    })
    .await;
    assert!(matches!(result, Err(StoreError::Backend(_))), "{result:?}");
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1, "a division by zero is not run again");
    // A deadlock that never clears is given up on, not retried forever.
    let runs = std::sync::atomic::AtomicU32::new(0);
    let result = herald_store_postgres::retry_transient(|| {
        runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        raise("40P01")
    })
    .await;
    assert!(result.is_err());
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 4);
    store.close().await;
}

/// The next notification whose payload is one of `ours`: other tests' schemas in the same
/// database notify the same channel meanwhile, with their own schema's name.
async fn recv(listener: &mut PgListener, ours: &[&str]) -> sqlx::postgres::PgNotification {
    loop {
        let notification = tokio::time::timeout(StdDuration::from_secs(10), listener.recv())
            .await
            .expect("a notification")
            .unwrap();
        if ours.contains(&notification.payload()) {
            return notification;
        }
    }
}

/// A committed transaction that queued deliveries notifies [`NEW_WORK_CHANNEL`] once, naming
/// its schema; a rolled-back one and one that queued nothing do not.
async fn new_work_is_announced(server: &crate::server::Server) {
    let schema = server.schema().await;
    let cipher = test_cipher();
    let (node_a, node_b) = (schema.store_with(cipher.clone()).await, schema.store_with(cipher).await);
    let mut listener = PgListener::connect_with(node_b.pool()).await.unwrap();
    listener.listen(NEW_WORK_CHANNEL).await.unwrap();
    let own: String = sqlx::query_scalar("SELECT current_schema()").fetch_one(node_a.pool()).await.unwrap();
    let marker = format!("marker {own}");
    let ours = [own.as_str(), marker.as_str()];

    let quiet = application(&node_a).await; // no endpoints: nothing to deliver
    let busy = application(&node_a).await;
    let target = endpoint(&node_a, &busy).await;
    let mut first = message(&busy);
    first.event_id = Some(EventId::parse("once").unwrap());
    node_a.insert_message(&first).await.unwrap();
    let notification = recv(&mut listener, &ours).await;
    assert_eq!((notification.channel(), notification.payload()), (NEW_WORK_CHANNEL, own.as_str()));

    // Neither of these queues a delivery, so neither may notify.
    let mut duplicate = message(&busy);
    duplicate.event_id = first.event_id.clone();
    assert!(node_a.insert_message(&duplicate).await.is_err());
    assert!(node_a.insert_message(&message(&quiet)).await.unwrap().is_empty());
    // A manual delivery does; then a marker proves nothing else arrived in between
    // (notifications reach a listener in commit order).
    node_a.create_manual_delivery(&busy, &first.id, &target, now()).await.unwrap();
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(NEW_WORK_CHANNEL)
        .bind(&marker)
        .execute(node_a.pool())
        .await
        .unwrap();
    assert_eq!(recv(&mut listener, &ours).await.payload(), own, "the manual delivery's notification");
    assert_eq!(recv(&mut listener, &ours).await.payload(), marker, "no notification for work never queued");
    assert!(node_a.find_message(&busy, &MessageKey::Id(duplicate.id)).await.unwrap().is_none());
    drop(listener);
    node_a.close().await;
    node_b.close().await;
}

/// A node in one schema is not woken by work queued in another schema of the same database
/// (nor by a notification another schema's node sends), and is by its own and by an empty
/// payload (what nodes of earlier versions send).
async fn wakes_for_own_schema_only(server: &crate::server::Server) {
    let (ours, theirs) = (server.schema().await, server.schema().await);
    let node = ours.store_with(test_cipher()).await;
    let other = theirs.store_with(test_cipher()).await;
    let own: String = sqlx::query_scalar("SELECT current_schema()").fetch_one(node.pool()).await.unwrap();
    let wakes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = wakes.clone();
    let listening = node.clone();
    let listener = tokio::spawn(async move {
        let _ = listening
            .listen_for_new_work(move || {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            })
            .await;
    });
    let count = || wakes.load(std::sync::atomic::Ordering::SeqCst);
    let notify = |payload: String| {
        let pool = node.pool().clone();
        async move {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(NEW_WORK_CHANNEL)
                .bind(payload)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    // Until the listener listens, notifications go unheard: send ours until one is counted.
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(10);
    while count() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the node never heard its own notification");
        notify(own.clone()).await;
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    let before = count();
    // Work queued in the other schema, then a notification of ours: notifications arrive in
    // commit order, so once ours is counted, the other schema's had arrived before it.
    let app = application(&other).await;
    endpoint(&other, &app).await;
    assert_eq!(other.insert_message(&message(&app)).await.unwrap().len(), 1);
    notify(own.clone()).await;
    wait_for(|| count() > before).await;
    assert_eq!(count(), before + 1, "the other schema's work woke this node");
    // Its own work wakes it, and so does an empty payload.
    let app = application(&node).await;
    endpoint(&node, &app).await;
    node.insert_message(&message(&app)).await.unwrap();
    wait_for(|| count() > before + 1).await;
    notify(String::new()).await;
    wait_for(|| count() > before + 2).await;
    listener.abort();
    node.close().await;
    other.close().await;
}

async fn wait_for(done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "not within 10 s");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}
