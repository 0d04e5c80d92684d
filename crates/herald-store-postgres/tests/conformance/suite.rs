//! The shared conformance checks of `herald_core::conformance`, one schema each.
//!
//! The list repeats the names in herald-core's `store_conformance_tests!` macro (a custom
//! harness can't use the macro, which generates `#[tokio::test]` functions), and
//! [`check_list_matches_core`] fails the run when the two lists drift apart.

use crate::Check;

/// Builds one [`Check`] per named conformance check: a fresh schema, a store on it, the check.
macro_rules! conformance_checks {
    ($($name:ident),* $(,)?) => {
        vec![$(
            Check {
                name: stringify!($name),
                exclusive: false,
                run: |server| Box::pin(async move {
                    let schema = server.schema().await;
                    let store = schema.store().await;
                    herald_core::conformance::$name(&store).await;
                    store.close().await;
                }),
            }
        ),*]
    };
}

pub(crate) fn conformance_checks() -> Vec<Check> {
    conformance_checks!(
        applications_round_trip,
        application_uids_are_unique,
        applications_page_both_ways,
        deleting_an_application_removes_its_endpoints,
        endpoints_round_trip_with_secrets,
        endpoint_uids_are_unique_per_application,
        endpoints_are_scoped_to_their_application,
        event_types_archive_list_and_expunge,
        unknown_event_types_are_reported,
        tokens_are_found_by_hash_only,
        tokens_are_listed_revoked_and_purged_once_expired,
        application_tokens_expire_at_once_or_by_session,
        sealing_clear_url_credentials_leaves_sealed_ones_alone,
        idempotency_keys_claim_complete_and_expire,
        updates_of_missing_rows_report_not_found,
        messages_get_one_delivery_per_matching_enabled_endpoint,
        event_ids_are_unique_per_application,
        a_message_for_a_missing_application_is_not_found,
        messages_list_newest_first_with_filters,
        due_deliveries_are_leased_once,
        scheduled_messages_wait_for_their_time,
        leases_take_a_bounded_share_per_endpoint,
        recording_is_fenced_by_the_lease,
        released_leases_are_due_again_without_an_attempt,
        retries_become_due_at_their_time,
        expired_leases_return_to_the_queue,
        attempts_are_listed_with_filters,
        delivery_views_show_the_latest_state,
        manual_deliveries_and_recovery,
        failing_endpoints_are_disabled,
        failing_streaks_start_once_and_end_with_a_success,
        payloads_expire,
        old_messages_are_deleted_with_their_deliveries_and_attempts,
        deleting_no_messages_is_not_an_error,
        heartbeats_count_the_live_nodes,
        leaving_nodes_stop_counting_at_once,
        circuits_stay_open_until_their_time,
        circuits_of_unknown_endpoints_read_closed,
        queue_stats_count_the_queue_and_endpoint_health,
        application_stats_count_a_window,
        old_attempts_are_deleted_and_their_messages_stay,
        concurrent_endpoint_changes_of_different_fields_all_land,
        a_disable_by_gone_is_not_undone_by_a_concurrent_change,
        concurrent_application_changes_of_different_fields_all_land,
        concurrent_event_type_changes_of_different_fields_all_land,
        concurrent_messages_all_land_and_a_duplicate_event_id_fails_alone,
        concurrent_messages_of_several_applications_reach_only_their_own_endpoints,
        ordered_lanes_deliver_one_at_a_time_in_order,
        a_paused_lane_waits_for_its_head_to_be_resent,
        a_resend_outside_the_lane_does_not_wait_for_it,
        unordered_endpoints_are_not_held_by_lanes,
        lane_states_show_heads_held_lanes_and_what_waits,
        a_lanes_head_is_leased_again_when_its_lease_expires,
        a_lanes_head_scheduled_later_holds_the_messages_behind_it,
        lanes_of_an_excluded_endpoint_wait_and_others_go,
        every_lane_has_its_turn_when_more_lanes_have_work_than_a_lease_reads,
        consent_is_written_narrowly_and_granted_once_by_its_callback,
        expired_or_replaced_callbacks_grant_nothing,
        a_message_for_one_endpoint_reaches_it_alone,
        sources_round_trip_hidden_from_the_application_list,
        sources_are_found_by_token_and_a_replaced_token_only_in_its_grace,
        deleting_a_source_removes_its_application_events_and_refusals,
        refusals_are_listed_newest_first,
        concurrent_source_changes_of_different_fields_all_land,
    )
}

/// The source of herald-core's macro, whose `@each` list names every conformance check.
const CORE_MACRO: &str = include_str!("../../../herald-core/src/conformance/mod.rs");

/// Fails when herald-core's list of checks and ours differ, naming the difference.
pub(crate) fn check_list_matches_core() -> Result<(), String> {
    let start = CORE_MACRO
        .find("(@each $make;")
        .ok_or("herald-core's store_conformance_tests! no longer has an `(@each $make;` list")?;
    let rest = &CORE_MACRO[start + "(@each $make;".len()..];
    let end = rest.find(");").ok_or("the `@each` list in herald-core does not end with `);`")?;
    let mut core: Vec<&str> = rest[..end].split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    let mut ours: Vec<&str> = conformance_checks().iter().map(|c| c.name).collect();
    core.sort_unstable();
    ours.sort_unstable();
    let missing: Vec<_> = core.iter().filter(|n| !ours.contains(n)).collect();
    let extra: Vec<_> = ours.iter().filter(|n| !core.contains(n)).collect();
    if missing.is_empty() && extra.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "tests/conformance/suite.rs is out of step with herald-core: missing {missing:?}, unknown {extra:?}"
        ))
    }
}
