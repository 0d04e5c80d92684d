//! The behaviour every `Store` backend must share, as plain async checks.
//!
//! A backend's test suite runs them all with [`crate::store_conformance_tests!`], giving each
//! check a fresh, empty store. Checks panic with a message on failure, like any test.
#![allow(clippy::unwrap_used)]

mod cluster;
mod concurrency;
mod consent;
mod delivery;
mod examples;
mod ingest;
mod lanes;
mod operations;
mod resources;
mod retention;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

pub use cluster::*;
pub use concurrency::*;
pub use consent::*;
pub use delivery::*;
pub use examples::*;
pub use ingest::*;
pub use lanes::*;
pub use operations::*;
pub use resources::*;
pub use retention::*;

use crate::id::{ApplicationId, EndpointId};
use crate::model::{Application, Endpoint, EndpointKeys, EventType};
use crate::name::{ChannelName, EventTypeName, Uid};
use crate::secret::SecretString;

/// Generates one `#[tokio::test]` per conformance check. `$make` is an async expression that
/// evaluates to a fresh store implementing [`crate::Store`] (it may also hold guards, e.g. a
/// temporary directory, as a tuple `(store, guard)`).
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@each $make;
            applications_round_trip, application_uids_are_unique, applications_page_both_ways,
            deleting_an_application_removes_its_endpoints, endpoints_round_trip_with_secrets,
            endpoint_uids_are_unique_per_application, endpoints_are_scoped_to_their_application,
            event_types_archive_list_and_expunge, unknown_event_types_are_reported,
            tokens_are_found_by_hash_only, tokens_are_listed_revoked_and_purged_once_expired,
            application_tokens_expire_at_once_or_by_session,
            sealing_clear_url_credentials_leaves_sealed_ones_alone,
            idempotency_keys_claim_complete_and_expire,
            updates_of_missing_rows_report_not_found,
            messages_get_one_delivery_per_matching_enabled_endpoint,
            event_ids_are_unique_per_application, a_message_for_a_missing_application_is_not_found, messages_list_newest_first_with_filters,
            due_deliveries_are_leased_once, scheduled_messages_wait_for_their_time,
            leases_take_a_bounded_share_per_endpoint, recording_is_fenced_by_the_lease, released_leases_are_due_again_without_an_attempt,
            retries_become_due_at_their_time, expired_leases_return_to_the_queue,
            attempts_are_listed_with_filters, delivery_views_show_the_latest_state,
            manual_deliveries_and_recovery, failing_endpoints_are_disabled,
            failing_streaks_start_once_and_end_with_a_success, payloads_expire,
            old_messages_are_deleted_with_their_deliveries_and_attempts,
            deleting_no_messages_is_not_an_error, heartbeats_count_the_live_nodes,
            leaving_nodes_stop_counting_at_once, circuits_stay_open_until_their_time,
            circuits_of_unknown_endpoints_read_closed,
            queue_stats_count_the_queue_and_endpoint_health, application_stats_count_a_window,
            old_attempts_are_deleted_and_their_messages_stay,
            concurrent_endpoint_changes_of_different_fields_all_land,
            a_disable_by_gone_is_not_undone_by_a_concurrent_change,
            concurrent_application_changes_of_different_fields_all_land,
            concurrent_event_type_changes_of_different_fields_all_land,
            concurrent_messages_all_land_and_a_duplicate_event_id_fails_alone,
            concurrent_messages_of_several_applications_reach_only_their_own_endpoints,
            ordered_lanes_deliver_one_at_a_time_in_order, a_paused_lane_waits_for_its_head_to_be_resent,
            a_resend_outside_the_lane_does_not_wait_for_it, unordered_endpoints_are_not_held_by_lanes,
            lane_states_show_heads_held_lanes_and_what_waits,
            a_lanes_head_is_leased_again_when_its_lease_expires,
            a_lanes_head_scheduled_later_holds_the_messages_behind_it,
            lanes_of_an_excluded_endpoint_wait_and_others_go,
            every_lane_has_its_turn_when_more_lanes_have_work_than_a_lease_reads,
            consent_is_written_narrowly_and_granted_once_by_its_callback,
            expired_or_replaced_callbacks_grant_nothing, a_message_for_one_endpoint_reaches_it_alone,

            sources_round_trip_hidden_from_the_application_list,
            sources_are_found_by_token_and_a_replaced_token_only_in_its_grace,
            deleting_a_source_removes_its_application_events_and_refusals,
            refusals_are_listed_newest_first, concurrent_source_changes_of_different_fields_all_land);
    };
    (@each $make:expr; $($check:ident),*) => {
        $(
            #[tokio::test]
            async fn $check() {
                let (store, _guard) = $make;
                $crate::conformance::$check(&store).await;
            }
        )*
    };
}

/// Timestamps at the microsecond precision every backend keeps.
fn now() -> DateTime<Utc> {
    crate::model::now()
}

fn application(name: &str, uid: Option<&str>) -> Application {
    let at = now();
    Application {
        id: ApplicationId::generate_at(at),
        uid: uid.map(|u| Uid::parse(u).unwrap()),
        name: name.to_owned(),
        metadata: BTreeMap::from([("tier".to_owned(), "gold".to_owned())]),
        throttle_rate: Some(10),
        created_at: at,
        updated_at: at,
    }
}

fn endpoint(app: &ApplicationId, uid: Option<&str>) -> Endpoint {
    let at = now();
    Endpoint {
        id: EndpointId::generate_at(at),
        app_id: app.clone(),
        uid: uid.map(|u| Uid::parse(u).unwrap()),
        url: "https://example.com/webhooks".parse().unwrap(),
        description: "orders".to_owned(),
        disabled: false,
        event_types: Some(vec![EventTypeName::parse("order.created").unwrap()]),
        channels: Some(vec![ChannelName::parse("eu").unwrap()]),
        throttle_rate: None,
        metadata: BTreeMap::new(),
        keys: EndpointKeys::new(None),
        headers: BTreeMap::from([("x-tenant".to_owned(), SecretString::new("acme"))]),
        bearer_token: Some(SecretString::new("r32j4hu32ji3j24ipj324ioj234oi2j432io3j4")),
        ordered: false,
        ordered_on_exhausted: Default::default(),
        consent: None,
        consent_state: None,
        payload_version: crate::version::PayloadVersion::new(3),
        transformation: crate::model::Transformation {
            code: Some("function handler(w) { return w; }".to_owned()),
            enabled: true,
            updated_at: Some(at),
        },
        created_at: at,
        updated_at: at,
    }
}

fn event_type(name: &str) -> EventType {
    let at = now();
    EventType {
        name: EventTypeName::parse(name).unwrap(),
        description: format!("{name} happened"),
        archived: false,
        deprecated: false,
        feature_flags: vec![EventTypeName::parse("beta").unwrap(), EventTypeName::parse("early").unwrap()],
        group_name: Some("orders".to_owned()),
        schemas: Some(serde_json::from_str(r#"{"1": {"type": "object"}}"#).unwrap()),
        converters: [(
            crate::version::PayloadVersion::new(2).unwrap(),
            "function convert(p) {\n  return p;\n}".to_owned(),
        )]
        .into(),
        validate_payloads: true,
        created_at: at,
        updated_at: at,
    }
}
