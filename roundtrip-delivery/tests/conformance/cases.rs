//! The behaviours every outbox store must have, each a function over a [`StoreFactory`],
//! in files by the lifecycle of a message (as the stores' own code is).
//!
//! The list of cases is [`for_each_case!`]; `conformance.rs` turns it into one test per
//! case and store.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderName, HeaderValue, Method};
use roundtrip_delivery::message::{
    AttemptErrorKind, Completion, Decision, LeaseCheck, MessageId, MessageKind, MessageStatus,
    NewAttempt, NewMessage,
};
use roundtrip_delivery::outbox::{AttemptFilter, MessageFilter, Outbox};
use url::Url;

use super::harness::{StoreConfig, StoreFactory, eventually, failure, ids, msg, now, success, url};

#[path = "cases/admin.rs"]
mod admin;
#[path = "cases/complete.rs"]
mod complete;
#[path = "cases/enqueue.rs"]
mod enqueue;
#[path = "cases/lease.rs"]
mod lease;
#[path = "cases/local.rs"]
mod local;

pub(crate) use admin::*;
pub(crate) use complete::*;
pub(crate) use enqueue::*;
pub(crate) use lease::*;
pub(crate) use local::*;

/// Calls `$callback!(($args) case, case, ...)` with the name of every case.
macro_rules! for_each_case {
    ($callback:ident ! ($($args:tt)*)) => {
        $callback! {
            ($($args)*)
            enqueue_is_durable_and_reads_back_whole,
            bad_messages_are_refused_and_nothing_is_stored,
            wakeups_follow_an_enqueue,
            idempotency_keys_deduplicate_while_live_and_after,
            concurrent_sends_with_one_key_store_one_message,
            concurrent_enqueues_share_commits,
            retry_and_replay_are_never_swallowed_by_idempotency,
            claims_lease_messages_to_their_owner,
            claims_take_the_oldest_due_first,
            messages_are_not_claimed_before_they_are_due,
            expired_leases_are_taken_over,
            renew_extends_only_the_owners_leases,
            release_hands_back_without_counting_a_lost_lease,
            reclaim_owner_takes_back_a_crashed_runs_leases,
            a_poison_message_is_failed_at_the_crash_cap,
            completions_record_attempts_and_move_messages_on,
            completions_apply_only_under_the_reporters_lease,
            one_batch_mixes_owners_decisions_and_repeats,
            retry_replay_and_cancel_follow_the_states,
            retry_now_ends_a_backoff_but_not_a_lease,
            listings_filter_by_host_and_ids,
            attempts_keep_capped_response_headers,
            retarget_moves_an_endpoints_live_messages_only,
            listings_filter_and_page_newest_first,
            attempts_are_listed_oldest_first,
            the_attempt_log_lists_every_attempt_in_the_order_recorded,
            history_is_purged_after_its_retention,
            concurrent_claimers_never_take_the_same_message,
            transactional_enqueue_commits_with_the_business_row,
            rollback_sends_nothing,
            enqueues_go_leased_to_the_local_dispatcher_without_a_claim,
            handed_over_messages_survive_a_crash,
            completions_refill_the_slots_they_free,
        }
    };
}

pub(crate) fn retry_in(d: Duration) -> Decision {
    Decision::Retry {
        at: SystemTime::now() + d,
    }
}

pub(crate) fn retry_at(at: SystemTime) -> Decision {
    Decision::Retry { at }
}

pub(crate) async fn claim_all(outbox: &dyn Outbox, owner: &str) -> Vec<MessageId> {
    outbox
        .claim(owner, 1000, Duration::from_secs(60))
        .await
        .expect("claim")
        .into_iter()
        .map(|m| m.meta.id)
        .collect()
}

/// Claims everything due and fails it, so it lands in history.
pub(crate) async fn fail_all(outbox: &dyn Outbox, owner: &str) -> Vec<MessageId> {
    let claimed = claim_all(outbox, owner).await;
    let done: Vec<Completion> = claimed
        .iter()
        .map(|id| {
            failure(
                id,
                owner,
                1,
                Decision::Failed {
                    reason: "exhausted".into(),
                },
            )
        })
        .collect();
    let statuses = outbox.complete(done).await.expect("complete");
    assert!(statuses.iter().all(|s| *s == LeaseCheck::Held));
    claimed
}
