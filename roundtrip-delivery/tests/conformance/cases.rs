//! The behaviours every outbox store must have, each a function over a [`StoreFactory`].
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
            retry_replay_and_cancel_follow_the_states,
            retarget_moves_an_endpoints_live_messages_only,
            listings_filter_and_page_newest_first,
            attempts_are_listed_oldest_first,
            the_attempt_log_lists_every_attempt_in_the_order_recorded,
            history_is_purged_after_its_retention,
            concurrent_claimers_never_take_the_same_message,
            transactional_enqueue_commits_with_the_business_row,
            rollback_sends_nothing,
        }
    };
}

fn retry_in(d: Duration) -> Decision {
    Decision::Retry {
        at: SystemTime::now() + d,
    }
}

fn retry_at(at: SystemTime) -> Decision {
    Decision::Retry { at }
}

async fn claim_all(outbox: &dyn Outbox, owner: &str) -> Vec<MessageId> {
    outbox
        .claim(owner, 1000, Duration::from_secs(60))
        .await
        .expect("claim")
        .into_iter()
        .map(|m| m.meta.id)
        .collect()
}

/// Claims everything due and fails it, so it lands in history.
async fn fail_all(outbox: &dyn Outbox, owner: &str) -> Vec<MessageId> {
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

pub(crate) async fn enqueue_is_durable_and_reads_back_whole(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let before = now() - Duration::from_millis(5);
    let m = NewMessage::webhook(
        "invoice.paid",
        Url::parse("https://user:pw@example.com/hooks/42?token=abc").expect("url"),
        r#"{"id":"42","paid":true}"#,
    )
    .method(Method::PUT)
    .header(
        HeaderName::from_static("x-tenant"),
        HeaderValue::from_static("acme"),
    )
    .header(
        HeaderName::from_static("x-tenant"),
        HeaderValue::from_static("second"),
    )
    .idempotency_key("inv-42-paid")
    .endpoint_id("ep_1")
    .signing_key("customer-7")
    .ordering_key("invoice-42")
    .metadata("rate_key", serde_json::json!("acme"))
    .metadata("nested", serde_json::json!({"a": [1, 2.5, "x"], "b": null}));
    let id = m.id().clone();
    let done = outbox.enqueue(vec![m]).await.expect("enqueue");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].id, id);
    assert!(!done[0].deduplicated);
    assert!(
        outbox.enqueue(Vec::new()).await.expect("empty").is_empty(),
        "an empty enqueue stores nothing"
    );

    // An independent instance (another process would open one) sees the committed row.
    let other = db.reopen().await;
    let stored = other.get(&id).await.expect("get").expect("committed");
    let meta = &stored.meta;
    assert_eq!(meta.kind, MessageKind::Webhook);
    assert_eq!(meta.name, "invoice.paid");
    assert_eq!(
        meta.url.as_str(),
        "https://user:pw@example.com/hooks/42?token=abc"
    );
    assert_eq!(meta.method, Method::PUT);
    assert_eq!(meta.status, MessageStatus::Pending);
    assert_eq!(meta.attempts, 0);
    assert_eq!(meta.lost_leases, 0);
    assert!(meta.lease.is_none());
    assert!(meta.finished_at.is_none());
    assert!(meta.last_error.is_none());
    assert!(meta.created_at >= before, "created_at is the enqueue time");
    assert!(meta.created_at <= now() + Duration::from_millis(5));
    let due = meta.next_attempt_at.expect("a live message has a due time");
    assert!(due <= now() + Duration::from_millis(5), "due at once");
    assert_eq!(meta.idempotency_key.as_deref(), Some("inv-42-paid"));
    assert_eq!(meta.endpoint_id.as_deref(), Some("ep_1"));
    assert_eq!(meta.signing_key.as_deref(), Some("customer-7"));
    assert_eq!(meta.ordering_key.as_deref(), Some("invoice-42"));
    assert_eq!(
        meta.metadata.get("rate_key"),
        Some(&serde_json::json!("acme"))
    );
    assert_eq!(
        meta.metadata.get("nested"),
        Some(&serde_json::json!({"a": [1, 2.5, "x"], "b": null}))
    );
    assert_eq!(stored.body, &br#"{"id":"42","paid":true}"#[..]);
    let tenants: Vec<&str> = stored
        .headers
        .get_all("x-tenant")
        .iter()
        .map(|v| v.to_str().expect("ascii"))
        .collect();
    assert_eq!(
        tenants,
        ["acme", "second"],
        "repeated headers keep their order"
    );
}

pub(crate) async fn bad_messages_are_refused_and_nothing_is_stored(f: &dyn StoreFactory) {
    let db = f
        .fresh(StoreConfig {
            max_body_bytes: 16,
            ..StoreConfig::default()
        })
        .await;
    let outbox = db.outbox();
    let file = NewMessage::callback("x", Url::parse("file:///etc/passwd").expect("url"), "{}");
    let err = outbox
        .enqueue(vec![msg("ok"), file])
        .await
        .expect_err("file: URL");
    assert!(err.is_invalid(), "{err:?}");
    assert!(err.to_string().contains("scheme `file`"), "{err}");

    let big = NewMessage::callback("x", url("/"), vec![b'1'; 17]);
    let err = outbox.enqueue(vec![big]).await.expect_err("too big");
    assert!(err.is_invalid());
    assert!(
        err.to_string().contains("over the limit of 16 bytes"),
        "{err}"
    );
    let exactly = NewMessage::callback("x", url("/"), vec![b'1'; 16]);
    outbox
        .enqueue(vec![exactly])
        .await
        .expect("a body at the limit is accepted");

    let unnamed = NewMessage::callback("", url("/"), "{}");
    assert!(
        outbox
            .enqueue(vec![unnamed])
            .await
            .expect_err("no name")
            .is_invalid()
    );
    let keyless = msg("x").idempotency_key("");
    assert!(
        outbox
            .enqueue(vec![keyless])
            .await
            .expect_err("empty key")
            .is_invalid()
    );

    let page = outbox.list(&MessageFilter::new()).await.expect("list");
    assert_eq!(
        page.messages.len(),
        1,
        "all or nothing: only the good message"
    );
    assert_eq!(db.live_rows().await, 1);
}

pub(crate) async fn wakeups_follow_an_enqueue(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let mut wakeup = outbox.subscribe();
    wakeup.mark_seen();
    outbox.enqueue(vec![msg("a")]).await.expect("enqueue");
    tokio::time::timeout(Duration::from_secs(5), wakeup.wait())
        .await
        .expect("an enqueue wakes the workers");
    // A notification while nobody waits is not lost.
    wakeup.mark_seen();
    outbox.notify();
    tokio::time::timeout(Duration::from_secs(5), wakeup.wait())
        .await
        .expect("notify wakes the workers");
}

pub(crate) async fn idempotency_keys_deduplicate_while_live_and_after(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let first = msg("invoice_paid").idempotency_key("inv-7");
    let id = first.id().clone();
    let done = outbox
        .enqueue(vec![
            first,
            msg("invoice_paid").idempotency_key("inv-7"),
            msg("invoice_sent").idempotency_key("inv-7"),
            msg("invoice_paid"),
        ])
        .await
        .expect("enqueue");
    assert!(!done[0].deduplicated);
    assert!(done[1].deduplicated, "same name and key in one batch");
    assert_eq!(done[1].id, id, "answers the first message's id");
    assert!(!done[2].deduplicated, "keys are per name");
    assert!(!done[3].deduplicated, "no key, no deduplication");

    // While live, from another call and from another instance.
    let again = outbox
        .enqueue(vec![msg("invoice_paid").idempotency_key("inv-7")])
        .await
        .expect("enqueue");
    assert!(again[0].deduplicated);
    assert_eq!(again[0].id, id);
    let other = db.reopen().await;
    let there = other
        .enqueue(vec![msg("invoice_paid").idempotency_key("inv-7")])
        .await
        .expect("enqueue on another instance");
    assert!(there[0].deduplicated);
    assert_eq!(there[0].id, id);

    // And after it finished (within the idempotency retention).
    let claimed = claim_all(&*outbox, "w").await;
    assert_eq!(claimed.len(), 3);
    outbox
        .complete(vec![success(&id, "w", 1)])
        .await
        .expect("complete");
    let later = outbox
        .enqueue(vec![msg("invoice_paid").idempotency_key("inv-7")])
        .await
        .expect("enqueue");
    assert!(later[0].deduplicated);
    assert_eq!(later[0].id, id);
    let page = outbox
        .list(&MessageFilter::new().name("invoice_paid"))
        .await
        .expect("list");
    assert_eq!(
        page.messages.len(),
        2,
        "the keyed message once, the unkeyed one"
    );
}

pub(crate) async fn concurrent_sends_with_one_key_store_one_message(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let stores: Vec<Arc<dyn Outbox>> = vec![db.outbox(), db.reopen().await, db.outbox()];
    let mut tasks = Vec::new();
    for (i, store) in stores.iter().cycle().take(12).enumerate() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .enqueue(vec![
                    msg("paid").idempotency_key("k").metadata("n", i.into()),
                ])
                .await
        }));
    }
    let mut winners = HashSet::new();
    let mut fresh = 0;
    for t in tasks {
        let out = t.await.expect("join").expect("enqueue");
        winners.insert(out[0].id.clone());
        fresh += usize::from(!out[0].deduplicated);
    }
    assert_eq!(fresh, 1, "exactly one send stored a message");
    assert_eq!(winners.len(), 1, "every send answers the same id");
    assert_eq!(db.live_rows().await, 1);
}

pub(crate) async fn retry_and_replay_are_never_swallowed_by_idempotency(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let m = msg("paid").idempotency_key("inv-9");
    let id = m.id().clone();
    outbox.enqueue(vec![m]).await.expect("enqueue");
    fail_all(&*outbox, "w").await;

    let retried = outbox
        .retry(&id)
        .await
        .expect("a manual retry goes through");
    assert_eq!(retried.status, MessageStatus::Pending);
    assert_eq!(retried.attempts, 1, "the attempt count is kept");
    let claimed = outbox
        .claim("w", 10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].meta.id, id);
    assert_eq!(claimed[0].meta.next_attempt_number(), 2);
    outbox
        .complete(vec![failure(
            &id,
            "w",
            2,
            Decision::Failed {
                reason: "gone".into(),
            },
        )])
        .await
        .expect("complete");

    let n = outbox
        .replay(&MessageFilter::new().name("paid"))
        .await
        .expect("replay");
    assert_eq!(n, 1, "a replay goes through too");
    let back = outbox.get(&id).await.expect("get").expect("kept");
    assert_eq!(back.meta.status, MessageStatus::Pending);
    assert_eq!(back.meta.attempts, 2);
    // The key still deduplicates a new send.
    let dup = outbox
        .enqueue(vec![msg("paid").idempotency_key("inv-9")])
        .await
        .expect("enqueue");
    assert!(dup[0].deduplicated);
    assert_eq!(dup[0].id, id);
}

pub(crate) async fn claims_lease_messages_to_their_owner(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let all = ids(&outbox
        .enqueue((0..5).map(|_| msg("a")).collect())
        .await
        .expect("enqueue"));
    let before = now();
    let first = outbox
        .claim("worker-a", 2, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(first.len(), 2, "the limit is kept");
    for m in &first {
        assert_eq!(m.meta.status, MessageStatus::Leased);
        let lease = m.meta.lease.as_ref().expect("a lease");
        assert_eq!(lease.owner, "worker-a");
        assert!(lease.expires_at >= before + Duration::from_secs(59));
        assert!(lease.expires_at <= now() + Duration::from_secs(61));
        assert_eq!(m.body, &br#"{"paid":true}"#[..]);
    }
    let read = outbox
        .get(&first[0].meta.id)
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(read.meta.status, MessageStatus::Leased);
    assert_eq!(read.meta.lease, first[0].meta.lease);

    let rest = outbox
        .claim("worker-b", 10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(rest.len(), 3, "a leased message is never claimed twice");
    let mut seen: BTreeSet<MessageId> = first.iter().map(|m| m.meta.id.clone()).collect();
    seen.extend(rest.iter().map(|m| m.meta.id.clone()));
    assert_eq!(seen, all.iter().cloned().collect::<BTreeSet<_>>());
    assert!(
        outbox
            .claim("worker-c", 10, Duration::from_secs(60))
            .await
            .expect("claim")
            .is_empty(),
        "nothing is left to claim"
    );
    assert!(
        outbox
            .claim("worker-c", 0, Duration::from_secs(60))
            .await
            .expect("claim none")
            .is_empty()
    );
    let leased = outbox
        .list(&MessageFilter::new().status(MessageStatus::Leased))
        .await
        .expect("list");
    assert_eq!(leased.messages.len(), 5);
}

pub(crate) async fn claims_take_the_oldest_due_first(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let all = ids(&outbox
        .enqueue((0..4).map(|_| msg("a")).collect())
        .await
        .expect("enqueue"));
    claim_all(&*outbox, "w").await;
    // Reschedule them, all due already, in an order that differs from their ids.
    let base = now() - Duration::from_secs(60);
    let due = [
        base + Duration::from_secs(30),
        base + Duration::from_secs(10),
        base + Duration::from_secs(40),
        base + Duration::from_secs(20),
    ];
    let completions: Vec<Completion> = all
        .iter()
        .zip(due)
        .map(|(id, at)| failure(id, "w", 1, retry_at(at)))
        .collect();
    outbox.complete(completions).await.expect("complete");

    let mut order = Vec::new();
    for _ in 0..4 {
        let one = outbox
            .claim("w2", 1, Duration::from_secs(60))
            .await
            .expect("claim");
        assert_eq!(one.len(), 1);
        order.push(one[0].meta.id.clone());
    }
    assert_eq!(
        order,
        vec![
            all[1].clone(),
            all[3].clone(),
            all[0].clone(),
            all[2].clone()
        ],
        "claimed by next_attempt_at, oldest first"
    );

    // A batch comes back oldest first too.
    let batch: Vec<Completion> = all
        .iter()
        .zip(due)
        .map(|(id, at)| failure(id, "w2", 2, retry_at(at)))
        .collect();
    outbox.complete(batch).await.expect("complete");
    let claimed = outbox
        .claim("w3", 3, Duration::from_secs(60))
        .await
        .expect("claim");
    let got: Vec<MessageId> = claimed.iter().map(|m| m.meta.id.clone()).collect();
    assert_eq!(got, vec![all[1].clone(), all[3].clone(), all[0].clone()]);
}

pub(crate) async fn messages_are_not_claimed_before_they_are_due(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let a = ids(&outbox
        .enqueue(vec![msg("a"), msg("b")])
        .await
        .expect("enqueue"));
    claim_all(&*outbox, "w").await;
    let soon = now() + Duration::from_millis(300);
    outbox
        .complete(vec![
            failure(&a[0], "w", 1, retry_at(soon)),
            failure(&a[1], "w", 1, retry_in(Duration::from_secs(3600))),
        ])
        .await
        .expect("complete");
    let waiting = outbox.get(&a[0]).await.expect("get").expect("kept");
    assert_eq!(waiting.meta.status, MessageStatus::Pending);
    assert_eq!(waiting.meta.attempts, 1);
    let stored_due = waiting.meta.next_attempt_at.expect("due time");
    let skew = if stored_due > soon {
        stored_due.duration_since(soon)
    } else {
        soon.duration_since(stored_due)
    }
    .unwrap_or_default();
    assert!(
        skew < Duration::from_millis(2),
        "the due time is kept: {skew:?}"
    );

    let claimed_at = eventually("the retry falls due", || {
        let outbox = outbox.clone();
        let want = a[0].clone();
        async move {
            let got = outbox
                .claim("w", 10, Duration::from_secs(60))
                .await
                .expect("claim");
            let at = now();
            (!got.is_empty()).then(|| {
                assert_eq!(got.len(), 1, "the one due in an hour stays");
                assert_eq!(got[0].meta.id, want);
                at
            })
        }
    })
    .await;
    assert!(
        claimed_at + Duration::from_millis(2) >= soon,
        "claimed before its due time"
    );
}

pub(crate) async fn expired_leases_are_taken_over(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let id = ids(&outbox.enqueue(vec![msg("a")]).await.expect("enqueue"))[0].clone();
    let claimed = outbox
        .claim("worker-a", 1, Duration::from_millis(300))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        outbox.reclaim_expired().await.expect("reclaim").requeued,
        0,
        "a lease that has not run out stays"
    );
    let r = eventually("the lease expires", || {
        let outbox = outbox.clone();
        async move {
            let r = outbox.reclaim_expired().await.expect("reclaim");
            (r.requeued > 0).then_some(r)
        }
    })
    .await;
    assert_eq!((r.requeued, r.failed), (1, 0));
    let back = outbox.get(&id).await.expect("get").expect("kept");
    assert_eq!(back.meta.status, MessageStatus::Pending);
    assert_eq!(back.meta.lost_leases, 1);
    assert!(back.meta.lease.is_none());

    // Another worker takes it over.
    let taken = outbox
        .claim("worker-b", 1, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].meta.lost_leases, 1);

    // worker-a reports late: its attempt is kept, the message is left to worker-b.
    let late = outbox
        .complete(vec![success(&id, "worker-a", 1)])
        .await
        .expect("complete");
    assert_eq!(late, vec![LeaseCheck::Lost]);
    let still = outbox.get(&id).await.expect("get").expect("kept");
    assert_eq!(still.meta.status, MessageStatus::Leased);
    assert_eq!(still.meta.attempts, 0, "a lost completion does not count");
    let attempts = outbox.attempts(&id).await.expect("attempts");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].worker, "worker-a");
    assert!(
        outbox
            .renew(
                "worker-a",
                std::slice::from_ref(&id),
                Duration::from_secs(60)
            )
            .await
            .expect("renew")
            .is_empty(),
        "the old owner cannot renew"
    );
    let done = outbox
        .complete(vec![success(&id, "worker-b", 1)])
        .await
        .expect("complete");
    assert_eq!(done, vec![LeaseCheck::Held]);
}

pub(crate) async fn renew_extends_only_the_owners_leases(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let all = ids(&outbox
        .enqueue(vec![msg("a"), msg("a"), msg("a")])
        .await
        .expect("enqueue"));
    let mine = outbox
        .claim("w1", 2, Duration::from_millis(200))
        .await
        .expect("claim");
    let theirs = outbox
        .claim("w2", 1, Duration::from_millis(200))
        .await
        .expect("claim");
    let short = mine[0].meta.lease.as_ref().expect("lease").expires_at;
    let kept = outbox
        .renew("w1", &all, Duration::from_secs(60))
        .await
        .expect("renew");
    let kept: BTreeSet<MessageId> = kept.into_iter().collect();
    let expected: BTreeSet<MessageId> = mine.iter().map(|m| m.meta.id.clone()).collect();
    assert_eq!(kept, expected, "only w1's leases are renewed");
    let renewed = outbox
        .get(&mine[0].meta.id)
        .await
        .expect("get")
        .expect("kept");
    let lease = renewed.meta.lease.expect("lease");
    assert_eq!(lease.owner, "w1");
    assert!(lease.expires_at >= short + Duration::from_secs(55));
    assert!(
        outbox
            .renew("w1", &[], Duration::from_secs(60))
            .await
            .expect("renew none")
            .is_empty()
    );

    // Once the short leases have run out, only w2's message is reclaimed.
    let r = eventually("w2's lease expires", || {
        let outbox = outbox.clone();
        async move {
            let r = outbox.reclaim_expired().await.expect("reclaim");
            (r.requeued > 0).then_some(r)
        }
    })
    .await;
    assert_eq!(r.requeued, 1);
    let back = outbox
        .get(&theirs[0].meta.id)
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(back.meta.status, MessageStatus::Pending);
    for m in &mine {
        let still = outbox.get(&m.meta.id).await.expect("get").expect("kept");
        assert_eq!(still.meta.status, MessageStatus::Leased);
    }
}

pub(crate) async fn release_hands_back_without_counting_a_lost_lease(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    outbox
        .enqueue(vec![msg("a"), msg("a"), msg("a")])
        .await
        .expect("enqueue");
    outbox
        .claim("leaving", 2, Duration::from_secs(60))
        .await
        .expect("claim");
    outbox
        .claim("staying", 1, Duration::from_secs(60))
        .await
        .expect("claim");
    let mut wakeup = outbox.subscribe();
    wakeup.mark_seen();
    assert_eq!(outbox.release("leaving").await.expect("release"), 2);
    tokio::time::timeout(Duration::from_secs(5), wakeup.wait())
        .await
        .expect("a release wakes the workers");
    assert_eq!(outbox.release("leaving").await.expect("again"), 0);
    let again = outbox
        .claim("next", 10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(again.len(), 2, "released messages are due at once");
    assert!(again.iter().all(|m| m.meta.lost_leases == 0));
    let staying = outbox
        .list(&MessageFilter::new().status(MessageStatus::Leased))
        .await
        .expect("list");
    let owners: Vec<String> = staying
        .messages
        .iter()
        .filter_map(|m| m.lease.as_ref().map(|l| l.owner.clone()))
        .collect();
    assert_eq!(owners.iter().filter(|o| *o == "staying").count(), 1);
}

pub(crate) async fn reclaim_owner_takes_back_a_crashed_runs_leases(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    outbox
        .enqueue(vec![msg("a"), msg("a"), msg("a")])
        .await
        .expect("enqueue");
    let crashed = outbox
        .claim("worker-1", 2, Duration::from_secs(3600))
        .await
        .expect("claim");
    outbox
        .claim("worker-2", 1, Duration::from_secs(3600))
        .await
        .expect("claim");
    // The restarted worker-1 takes back what its previous run held, long lease or not.
    let r = outbox.reclaim_owner("worker-1").await.expect("reclaim");
    assert_eq!((r.requeued, r.failed), (2, 0));
    for m in &crashed {
        let back = outbox.get(&m.meta.id).await.expect("get").expect("kept");
        assert_eq!(back.meta.status, MessageStatus::Pending);
        assert_eq!(
            back.meta.lost_leases, 1,
            "a crashed run counts as a lost lease"
        );
    }
    let r = outbox.reclaim_owner("worker-1").await.expect("again");
    assert_eq!((r.requeued, r.failed), (0, 0));
    let leased = outbox
        .list(&MessageFilter::new().status(MessageStatus::Leased))
        .await
        .expect("list");
    assert_eq!(leased.messages.len(), 1, "worker-2's lease is untouched");
}

pub(crate) async fn a_poison_message_is_failed_at_the_crash_cap(f: &dyn StoreFactory) {
    let db = f
        .fresh(StoreConfig {
            crash_cap: 2,
            ..StoreConfig::default()
        })
        .await;
    let outbox = db.outbox();
    let m = msg("poison");
    let id = m.id().clone();
    outbox.enqueue(vec![m]).await.expect("enqueue");

    outbox.claim("w1", 1, Duration::ZERO).await.expect("claim");
    let r = eventually("the zero lease is reclaimed", || {
        let outbox = outbox.clone();
        async move {
            let r = outbox.reclaim_expired().await.expect("reclaim");
            (r.requeued + r.failed > 0).then_some(r)
        }
    })
    .await;
    assert_eq!((r.requeued, r.failed), (1, 0));

    // The second crash is by owner: a worker restarting under the same name.
    outbox
        .claim("w2", 1, Duration::from_secs(60))
        .await
        .expect("claim");
    let r = outbox.reclaim_owner("w2").await.expect("reclaim");
    assert_eq!((r.requeued, r.failed), (0, 1));

    let dead = outbox.get(&id).await.expect("get").expect("kept");
    assert_eq!(dead.meta.status, MessageStatus::Failed);
    assert_eq!(dead.meta.lost_leases, 2);
    assert_eq!(dead.meta.attempts, 0);
    assert!(dead.meta.finished_at.is_some());
    let why = dead.meta.last_error.unwrap_or_default();
    assert!(why.contains("crash cap"), "{why}");
    assert!(
        outbox
            .claim("w3", 1, Duration::from_secs(60))
            .await
            .expect("claim")
            .is_empty()
    );
    assert_eq!(db.live_rows().await, 0);
    // It can be retried by hand, starting afresh on lost leases.
    let back = outbox.retry(&id).await.expect("retry");
    assert_eq!(back.lost_leases, 0);
}

pub(crate) async fn completions_record_attempts_and_move_messages_on(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let all = ids(&outbox
        .enqueue(vec![msg("a"), msg("b"), msg("c"), msg("d")])
        .await
        .expect("enqueue"));
    claim_all(&*outbox, "w").await;
    let started = now() - Duration::from_millis(40);
    let retry_at_time = now() + Duration::from_secs(3600);
    let completions = vec![
        success(&all[0], "w", 1),
        failure(&all[1], "w", 1, retry_at(retry_at_time)),
        failure(
            &all[2],
            "w",
            1,
            Decision::Failed {
                reason: "410 Gone: the receiver asked to stop".into(),
            },
        ),
        Completion {
            message_id: all[3].clone(),
            owner: "w".into(),
            attempt: NewAttempt::new(1, started, Duration::from_micros(15_250))
                .error(AttemptErrorKind::Timeout, "timed out after 15 s")
                .contract_violation(Some("missing `ok`".into())),
            decision: retry_in(Duration::from_secs(60)),
        },
    ];
    let statuses = outbox.complete(completions).await.expect("complete");
    assert_eq!(statuses, vec![LeaseCheck::Held; 4]);

    let delivered = outbox.get(&all[0]).await.expect("get").expect("kept");
    assert_eq!(delivered.meta.status, MessageStatus::Succeeded);
    assert_eq!(delivered.meta.attempts, 1);
    assert!(delivered.meta.finished_at.is_some());
    assert!(delivered.meta.lease.is_none());
    assert!(delivered.meta.next_attempt_at.is_none());
    assert_eq!(delivered.body, &br#"{"paid":true}"#[..]);

    let waiting = outbox.get(&all[1]).await.expect("get").expect("kept");
    assert_eq!(waiting.meta.status, MessageStatus::Pending);
    assert_eq!(waiting.meta.attempts, 1);
    assert_eq!(waiting.meta.last_error.as_deref(), Some("HTTP 500"));
    assert!(waiting.meta.lease.is_none());

    let failed = outbox.get(&all[2]).await.expect("get").expect("kept");
    assert_eq!(failed.meta.status, MessageStatus::Failed);
    assert_eq!(failed.meta.attempts, 1);
    assert_eq!(
        failed.meta.last_error.as_deref(),
        Some("410 Gone: the receiver asked to stop")
    );

    let timed_out = outbox.get(&all[3]).await.expect("get").expect("kept");
    assert_eq!(
        timed_out.meta.last_error.as_deref(),
        Some("timeout: timed out after 15 s")
    );

    // Nothing is due: the retries are in the future.
    assert!(claim_all(&*outbox, "w").await.is_empty());
    // The hot table holds only the live messages.
    assert_eq!(db.live_rows().await, 2);

    let ok = outbox.attempts(&all[0]).await.expect("attempts");
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].message_id, all[0]);
    assert_eq!(ok[0].number, 1);
    assert_eq!(ok[0].worker, "w");
    assert_eq!(ok[0].response_status, Some(200));
    assert_eq!(ok[0].response_body, &b"ok"[..]);
    assert!(!ok[0].response_truncated);
    assert!(ok[0].error.is_none());
    assert_eq!(ok[0].decision, "succeeded");
    assert!(ok[0].next_attempt_at.is_none());

    let retried = outbox.attempts(&all[1]).await.expect("attempts");
    assert_eq!(retried[0].decision, "retry");
    assert_eq!(retried[0].response_status, Some(500));
    let next = retried[0]
        .next_attempt_at
        .expect("the retry time is recorded");
    let gap = next
        .duration_since(retry_at_time)
        .or_else(|_| retry_at_time.duration_since(next))
        .unwrap_or_default();
    assert!(gap < Duration::from_millis(2), "{gap:?}");

    let gone = outbox.attempts(&all[2]).await.expect("attempts");
    assert_eq!(gone[0].decision, "failed");

    let t = outbox.attempts(&all[3]).await.expect("attempts");
    assert_eq!(t[0].response_status, None);
    assert!(t[0].response_body.is_empty());
    let error = t[0].error.as_ref().expect("the error is kept");
    assert_eq!(error.kind, AttemptErrorKind::Timeout);
    assert_eq!(error.message, "timed out after 15 s");
    assert_eq!(t[0].contract_violation.as_deref(), Some("missing `ok`"));
    let start_gap = t[0]
        .started_at
        .duration_since(started)
        .or_else(|_| started.duration_since(t[0].started_at))
        .unwrap_or_default();
    assert!(start_gap < Duration::from_millis(2), "{start_gap:?}");
    assert_eq!(t[0].duration, Duration::from_micros(15_250));
}

pub(crate) async fn completions_apply_only_under_the_reporters_lease(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let all = ids(&outbox
        .enqueue(vec![msg("a"), msg("b"), msg("c")])
        .await
        .expect("enqueue"));
    claim_all(&*outbox, "w").await;
    let unknown: MessageId = "msg_doesnotexist".parse().expect("id");
    let statuses = outbox
        .complete(vec![
            success(&all[0], "w", 1),
            success(&all[1], "someone-else", 1),
            failure(&all[2], "someone-else", 1, retry_in(Duration::from_secs(1))),
            success(&unknown, "w", 1),
        ])
        .await
        .expect("complete");
    assert_eq!(
        statuses,
        vec![
            LeaseCheck::Held,
            LeaseCheck::Lost,
            LeaseCheck::Lost,
            LeaseCheck::Lost,
        ]
    );
    let a = outbox.get(&all[0]).await.expect("get").expect("kept");
    assert_eq!(a.meta.status, MessageStatus::Succeeded);
    assert_eq!(a.meta.attempts, 1);
    for id in &all[1..] {
        let m = outbox.get(id).await.expect("get").expect("kept");
        assert_eq!(
            m.meta.status,
            MessageStatus::Leased,
            "not the reporter's lease"
        );
        assert_eq!(m.meta.attempts, 0);
        assert_eq!(
            outbox.attempts(id).await.expect("attempts").len(),
            1,
            "the attempt is recorded all the same"
        );
    }
    // Reported again after it finished: recorded, not applied.
    let again = outbox
        .complete(vec![success(&all[0], "w", 1)])
        .await
        .expect("complete");
    assert_eq!(again, vec![LeaseCheck::Lost]);
    let a = outbox.get(&all[0]).await.expect("get").expect("kept");
    assert_eq!(a.meta.attempts, 1);
    assert!(outbox.complete(Vec::new()).await.expect("none").is_empty());
}

pub(crate) async fn retarget_moves_an_endpoints_live_messages_only(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    // ep_1: one delivered (history), one leased, one pending; ep_2 and a callback: pending.
    let delivered = msg("paid").endpoint_id("ep_1");
    let delivered_id = delivered.id().clone();
    outbox.enqueue(vec![delivered]).await.expect("enqueue");
    let claimed = claim_all(&*outbox, "w").await;
    assert_eq!(claimed, vec![delivered_id.clone()]);
    outbox
        .complete(vec![success(&delivered_id, "w", 1)])
        .await
        .expect("complete");
    let leased = msg("paid").endpoint_id("ep_1");
    let leased_id = leased.id().clone();
    outbox.enqueue(vec![leased]).await.expect("enqueue");
    assert_eq!(claim_all(&*outbox, "w").await, vec![leased_id.clone()]);
    let pending = msg("paid").endpoint_id("ep_1");
    let other = msg("paid").endpoint_id("ep_2");
    let callback = msg("paid");
    let (pending_id, other_id, callback_id) = (
        pending.id().clone(),
        other.id().clone(),
        callback.id().clone(),
    );
    outbox
        .enqueue(vec![pending, other, callback])
        .await
        .expect("enqueue");

    let moved = url("/moved");
    assert_eq!(outbox.retarget("ep_1", &moved).await.expect("retarget"), 2);
    let url_of = |id: MessageId| {
        let outbox = outbox.clone();
        async move {
            outbox
                .get(&id)
                .await
                .expect("get")
                .expect("stored")
                .meta
                .url
        }
    };
    assert_eq!(url_of(leased_id.clone()).await, moved);
    assert_eq!(url_of(pending_id.clone()).await, moved);
    assert_eq!(url_of(other_id).await, url("/hook"), "another endpoint's");
    assert_eq!(url_of(callback_id).await, url("/hook"), "a callback");
    assert_eq!(
        url_of(delivered_id).await,
        url("/hook"),
        "history keeps where it was delivered"
    );
    // The leased message keeps its lease and state; its next claim goes to the new URL.
    let leased = outbox.get(&leased_id).await.expect("get").expect("stored");
    assert_eq!(leased.meta.status, MessageStatus::Leased);
    let claimed = outbox
        .claim("w2", 10, Duration::from_secs(60))
        .await
        .expect("claim");
    let pending = claimed
        .iter()
        .find(|m| m.meta.id == pending_id)
        .expect("the pending message is claimed");
    assert_eq!(pending.meta.url, moved);

    // Nothing left to move, and an unknown endpoint moves nothing.
    assert_eq!(outbox.retarget("ep_1", &moved).await.expect("again"), 0);
    assert_eq!(outbox.retarget("ep_9", &moved).await.expect("unknown"), 0);
}

pub(crate) async fn retry_replay_and_cancel_follow_the_states(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let batch: Vec<NewMessage> = (0..5)
        .map(|i| msg(if i < 3 { "paid" } else { "sent" }))
        .collect();
    let all: Vec<MessageId> = batch.iter().map(|m| m.id().clone()).collect();
    outbox.enqueue(batch).await.expect("enqueue");

    // A live message cannot be retried; an unknown one is not found.
    let live = outbox.retry(&all[0]).await.expect_err("live");
    assert!(live.is_conflict(), "{live}");
    let unknown: MessageId = "msg_doesnotexist".parse().expect("id");
    assert!(
        outbox
            .retry(&unknown)
            .await
            .expect_err("unknown")
            .is_not_found()
    );
    assert!(
        outbox
            .cancel(&unknown)
            .await
            .expect_err("unknown")
            .is_not_found()
    );
    assert!(outbox.get(&unknown).await.expect("get").is_none());

    // Cancel a pending one; cancelling it again is a conflict.
    let cancelled = outbox.cancel(&all[3]).await.expect("cancel");
    assert_eq!(cancelled.status, MessageStatus::Cancelled);
    assert!(cancelled.finished_at.is_some());
    assert!(
        outbox
            .cancel(&all[3])
            .await
            .expect_err("twice")
            .is_conflict()
    );

    // Cancel a leased one: the worker's late report is recorded, not applied.
    let leased = outbox
        .claim("w", 10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(leased.len(), 4);
    let cancelled = outbox
        .cancel(&all[4])
        .await
        .expect("cancel a leased message");
    assert_eq!(cancelled.status, MessageStatus::Cancelled);
    let late = outbox
        .complete(vec![success(&all[4], "w", 1)])
        .await
        .expect("complete");
    assert_eq!(late, vec![LeaseCheck::Lost]);
    let still = outbox.get(&all[4]).await.expect("get").expect("kept");
    assert_eq!(still.meta.status, MessageStatus::Cancelled);

    // Fail the three "paid" ones, then replay them by filter.
    let failed: Vec<Completion> = all[..3]
        .iter()
        .map(|id| {
            failure(
                id,
                "w",
                1,
                Decision::Failed {
                    reason: "exhausted".into(),
                },
            )
        })
        .collect();
    outbox.complete(failed).await.expect("complete");
    let page = outbox
        .list(&MessageFilter::new().status(MessageStatus::Failed))
        .await
        .expect("list");
    assert_eq!(page.messages.len(), 3);

    let mut wakeup = outbox.subscribe();
    wakeup.mark_seen();
    let replayed = outbox.replay(&MessageFilter::new()).await.expect("replay");
    assert_eq!(replayed, 3, "only failed messages are replayed by default");
    tokio::time::timeout(Duration::from_secs(5), wakeup.wait())
        .await
        .expect("a replay wakes the workers");
    assert_eq!(
        outbox.replay(&MessageFilter::new()).await.expect("again"),
        0,
        "nothing failed is left"
    );
    let pending = outbox
        .list(&MessageFilter::new().status(MessageStatus::Pending))
        .await
        .expect("list");
    assert_eq!(pending.messages.len(), 3);
    assert!(pending.messages.iter().all(|m| m.attempts == 1));
    assert!(
        pending
            .messages
            .iter()
            .all(|m| m.last_error.as_deref() == Some("exhausted")),
        "the last error is kept for the record"
    );

    // Cancelled ones are replayed when named, or retried by hand.
    let n = outbox
        .replay(
            &MessageFilter::new()
                .status(MessageStatus::Cancelled)
                .name("sent"),
        )
        .await
        .expect("replay cancelled");
    assert_eq!(n, 2);
    let n = outbox
        .replay(&MessageFilter::new().status(MessageStatus::Pending))
        .await
        .expect("replay live");
    assert_eq!(n, 0, "live messages are never replayed");
    let again = outbox.cancel(&all[3]).await.expect("cancel");
    assert_eq!(again.status, MessageStatus::Cancelled);
    let back = outbox.retry(&all[3]).await.expect("retry cancelled");
    assert_eq!(back.status, MessageStatus::Pending);
    assert!(back.next_attempt_at.is_some());

    // A succeeded message can be sent again by hand.
    let mine = claim_all(&*outbox, "w2").await;
    assert!(mine.contains(&all[0]));
    outbox
        .complete(vec![success(&all[0], "w2", 2)])
        .await
        .expect("complete");
    let resent = outbox.retry(&all[0]).await.expect("retry succeeded");
    assert_eq!(resent.status, MessageStatus::Pending);
    assert_eq!(resent.attempts, 2);
}

pub(crate) async fn listings_filter_and_page_newest_first(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let start = now() - Duration::from_millis(5);
    let mut all = Vec::new();
    for i in 0..7 {
        let m = if i % 2 == 0 {
            msg("paid").endpoint_id("ep_1")
        } else {
            NewMessage::webhook("new-subscription", url("/w"), "{}")
        };
        all.push(m.id().clone());
        outbox.enqueue(vec![m]).await.expect("enqueue");
    }
    // Two finish: the listing spans the live table and history.
    let claimed = outbox
        .claim("w", 2, Duration::from_secs(60))
        .await
        .expect("claim");
    let finished: Vec<MessageId> = claimed.iter().map(|m| m.meta.id.clone()).collect();
    outbox
        .complete(finished.iter().map(|id| success(id, "w", 1)).collect())
        .await
        .expect("complete");

    let mut newest_first = all.clone();
    newest_first.sort();
    newest_first.reverse();
    let everything = outbox.list(&MessageFilter::new()).await.expect("list");
    let listed: Vec<MessageId> = everything.messages.iter().map(|m| m.id.clone()).collect();
    assert_eq!(listed, newest_first);
    assert!(everything.next.is_none());

    let webhooks = outbox
        .list(&MessageFilter::new().kind(MessageKind::Webhook))
        .await
        .expect("list");
    assert_eq!(webhooks.messages.len(), 3);
    assert!(
        webhooks
            .messages
            .iter()
            .all(|m| m.kind == MessageKind::Webhook)
    );
    let endpoint = outbox
        .list(&MessageFilter::new().endpoint_id("ep_1"))
        .await
        .expect("list");
    assert_eq!(endpoint.messages.len(), 4);
    let named = outbox
        .list(&MessageFilter::new().name("new-subscription"))
        .await
        .expect("list");
    assert_eq!(named.messages.len(), 3);
    let done = outbox
        .list(&MessageFilter::new().status(MessageStatus::Succeeded))
        .await
        .expect("list");
    let done: BTreeSet<MessageId> = done.messages.into_iter().map(|m| m.id).collect();
    assert_eq!(done, finished.iter().cloned().collect::<BTreeSet<_>>());
    let mixed = outbox
        .list(
            &MessageFilter::new()
                .status(MessageStatus::Pending)
                .status(MessageStatus::Succeeded),
        )
        .await
        .expect("list");
    assert_eq!(mixed.messages.len(), 7);
    let future = outbox
        .list(&MessageFilter::new().created_after(now() + Duration::from_secs(60)))
        .await
        .expect("list");
    assert!(future.messages.is_empty());
    let past = outbox
        .list(&MessageFilter::new().created_before(start))
        .await
        .expect("list");
    assert!(past.messages.is_empty());
    let window = outbox
        .list(
            &MessageFilter::new()
                .created_after(start)
                .created_before(now() + Duration::from_secs(1)),
        )
        .await
        .expect("list");
    assert_eq!(window.messages.len(), 7);

    // Pages of 3 walk everything once, newest first.
    let mut walked = Vec::new();
    let mut cursor: Option<MessageId> = None;
    for _ in 0..10 {
        let mut filter = MessageFilter::new().limit(3);
        if let Some(c) = cursor.take() {
            filter = filter.before(c);
        }
        let page = outbox.list(&filter).await.expect("page");
        assert!(page.messages.len() <= 3);
        walked.extend(page.messages.iter().map(|m| m.id.clone()));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(walked, newest_first);
    let capped = outbox
        .list(&MessageFilter::new().limit(0))
        .await
        .expect("list");
    assert_eq!(capped.messages.len(), 1, "a limit of 0 means 1");
}

pub(crate) async fn attempts_are_listed_oldest_first(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let id = ids(&outbox
        .enqueue(vec![msg("a"), msg("b")])
        .await
        .expect("enqueue"))[0]
        .clone();
    for number in 1..=3 {
        let claimed = outbox
            .claim("w", 10, Duration::from_secs(60))
            .await
            .expect("claim");
        assert!(claimed.iter().any(|m| m.meta.id == id));
        let done: Vec<Completion> = claimed
            .iter()
            .map(|m| {
                if number < 3 {
                    failure(
                        &m.meta.id,
                        "w",
                        number,
                        retry_at(now() - Duration::from_secs(1)),
                    )
                } else {
                    success(&m.meta.id, "w", number)
                }
            })
            .collect();
        outbox.complete(done).await.expect("complete");
    }
    let attempts = outbox.attempts(&id).await.expect("attempts");
    let numbers: Vec<u32> = attempts.iter().map(|a| a.number).collect();
    assert_eq!(numbers, [1, 2, 3]);
    let outcomes: Vec<&str> = attempts.iter().map(|a| a.decision.as_str()).collect();
    assert_eq!(outcomes, ["retry", "retry", "succeeded"]);
    assert!(attempts.iter().all(|a| a.message_id == id));
    let meta = outbox.get(&id).await.expect("get").expect("kept");
    assert_eq!(meta.meta.attempts, 3);
    let none: MessageId = "msg_none".parse().expect("id");
    assert!(outbox.attempts(&none).await.expect("attempts").is_empty());
}

pub(crate) async fn the_attempt_log_lists_every_attempt_in_the_order_recorded(
    f: &dyn StoreFactory,
) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let [a, b, c] = [msg("a"), msg("b"), msg("c")];
    let (ida, idb, idc) = (a.id().clone(), b.id().clone(), c.id().clone());
    outbox.enqueue(vec![a, b, c]).await.expect("enqueue");
    let lease = Duration::from_secs(60);
    let first = outbox.claim("w1", 2, lease).await.expect("claim");
    let second = outbox.claim("w2", 2, lease).await.expect("claim");
    assert_eq!((first.len(), second.len()), (2, 1));
    // w1 records a retry of `a` and a success of `b`, then w2 a success of `c`, then w1
    // the second attempt of `a`.
    let due = retry_at(now() - Duration::from_secs(1));
    outbox
        .complete(vec![failure(&ida, "w1", 1, due), success(&idb, "w1", 1)])
        .await
        .expect("complete");
    outbox
        .complete(vec![success(&idc, "w2", 1)])
        .await
        .expect("complete");
    let again = outbox.claim("w1", 1, lease).await.expect("claim");
    assert_eq!(again.len(), 1);
    outbox
        .complete(vec![success(&ida, "w1", 2)])
        .await
        .expect("complete");

    let seen = |page: &[roundtrip_delivery::message::Attempt]| -> Vec<(MessageId, u32, String)> {
        page.iter()
            .map(|a| (a.message_id.clone(), a.number, a.worker.clone()))
            .collect()
    };
    let all = outbox
        .attempt_log(&AttemptFilter::new())
        .await
        .expect("the log");
    assert_eq!(
        seen(&all.attempts),
        [
            (ida.clone(), 1, "w1".to_owned()),
            (idb.clone(), 1, "w1".to_owned()),
            (idc.clone(), 1, "w2".to_owned()),
            (ida.clone(), 2, "w1".to_owned()),
        ]
    );
    assert!(all.next.is_none());
    assert_eq!(all.attempts[0].decision, "retry");
    assert_eq!(all.attempts[3].decision, "succeeded");

    let by_w1 = outbox
        .attempt_log(&AttemptFilter::new().worker("w1"))
        .await
        .expect("by worker");
    assert_eq!(by_w1.attempts.len(), 3);
    assert!(by_w1.attempts.iter().all(|a| a.worker == "w1"));
    let of_a = outbox
        .attempt_log(&AttemptFilter::new().message_id(ida.clone()))
        .await
        .expect("by message");
    let numbers: Vec<u32> = of_a.attempts.iter().map(|a| a.number).collect();
    assert_eq!(numbers, [1, 2]);

    // Pages of two follow each other without a gap or a repeat.
    let page1 = outbox
        .attempt_log(&AttemptFilter::new().limit(2))
        .await
        .expect("page 1");
    let cursor = page1.next.expect("a second page");
    let page2 = outbox
        .attempt_log(&AttemptFilter::new().limit(2).after(cursor))
        .await
        .expect("page 2");
    assert!(page2.next.is_none());
    let mut paged = seen(&page1.attempts);
    paged.extend(seen(&page2.attempts));
    assert_eq!(paged, seen(&all.attempts));
    let nobody = outbox
        .attempt_log(&AttemptFilter::new().worker("nobody"))
        .await
        .expect("no attempts");
    assert!(nobody.attempts.is_empty() && nobody.next.is_none());
}

pub(crate) async fn history_is_purged_after_its_retention(f: &dyn StoreFactory) {
    let db = f
        .fresh(StoreConfig {
            retention_succeeded: Duration::ZERO,
            retention_failed: Duration::from_secs(3600),
            idempotency_retention: Duration::ZERO,
            ..StoreConfig::default()
        })
        .await;
    let outbox = db.outbox();
    let ok = msg("a").idempotency_key("k1");
    let bad = msg("a");
    let live = msg("a").idempotency_key("k-live");
    let (ok_id, bad_id, live_id) = (ok.id().clone(), bad.id().clone(), live.id().clone());
    outbox.enqueue(vec![ok, bad]).await.expect("enqueue");
    outbox
        .claim("w", 10, Duration::from_secs(60))
        .await
        .expect("claim");
    outbox
        .complete(vec![
            success(&ok_id, "w", 1),
            failure(
                &bad_id,
                "w",
                1,
                Decision::Failed {
                    reason: "exhausted".into(),
                },
            ),
        ])
        .await
        .expect("complete");
    outbox.enqueue(vec![live]).await.expect("enqueue live");

    let purged = eventually("the delivered message passes its retention", || {
        let outbox = outbox.clone();
        async move {
            let p = outbox.purge().await.expect("purge");
            (p.messages > 0).then_some(p)
        }
    })
    .await;
    assert_eq!(purged.messages, 1);
    assert_eq!(purged.attempts, 1);
    assert_eq!(purged.idempotency_keys, 1, "the live message keeps its key");
    assert!(outbox.get(&ok_id).await.expect("get").is_none());
    assert!(outbox.attempts(&ok_id).await.expect("attempts").is_empty());
    let kept = outbox.get(&bad_id).await.expect("get").expect("kept");
    assert_eq!(
        kept.meta.status,
        MessageStatus::Failed,
        "undelivered stay longer"
    );
    assert_eq!(outbox.attempts(&bad_id).await.expect("attempts").len(), 1);
    assert!(outbox.get(&live_id).await.expect("get").is_some());

    // With its key purged, the same key sends again; the live one still deduplicates.
    let again = outbox
        .enqueue(vec![
            msg("a").idempotency_key("k1"),
            msg("a").idempotency_key("k-live"),
        ])
        .await
        .expect("enqueue");
    assert!(!again[0].deduplicated);
    assert!(again[1].deduplicated);
    assert_eq!(again[1].id, live_id);
    let nothing = outbox.purge().await.expect("purge");
    assert_eq!(nothing.messages, 0);
}

pub(crate) async fn concurrent_claimers_never_take_the_same_message(f: &dyn StoreFactory) {
    const MESSAGES: usize = 600;
    const CLAIMERS: usize = 4;
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let mut all = BTreeSet::new();
    for chunk in 0..(MESSAGES / 100) {
        let batch: Vec<NewMessage> = (0..100)
            .map(|i| msg("load").metadata("n", (chunk * 100 + i).into()))
            .collect();
        all.extend(ids(&outbox.enqueue(batch).await.expect("enqueue")));
    }
    assert_eq!(all.len(), MESSAGES);

    // Each claimer is its own store instance, as separate processes would be.
    let mut tasks = Vec::new();
    for c in 0..CLAIMERS {
        let store = if c == 0 {
            db.outbox()
        } else {
            db.reopen().await
        };
        tasks.push(tokio::spawn(async move {
            let owner = format!("claimer-{c}");
            let mut mine = Vec::new();
            loop {
                let batch = store
                    .claim(&owner, 7, Duration::from_secs(60))
                    .await
                    .expect("claim");
                if batch.is_empty() {
                    break;
                }
                let done: Vec<Completion> = batch
                    .iter()
                    .map(|m| success(&m.meta.id, &owner, 1))
                    .collect();
                let statuses = store.complete(done).await.expect("complete");
                assert!(statuses.iter().all(|s| *s == LeaseCheck::Held));
                mine.extend(batch.into_iter().map(|m| m.meta.id));
                tokio::task::yield_now().await;
            }
            mine
        }));
    }
    let mut seen = BTreeSet::new();
    let mut per_claimer = Vec::new();
    for t in tasks {
        let mine = t.await.expect("join");
        per_claimer.push(mine.len());
        for id in mine {
            assert!(seen.insert(id.clone()), "{id} was claimed twice");
        }
    }
    assert_eq!(seen, all, "every message was claimed exactly once");
    assert_eq!(db.live_rows().await, 0);
    let sample: Vec<&MessageId> = all.iter().step_by(97).collect();
    for id in sample {
        assert_eq!(outbox.attempts(id).await.expect("attempts").len(), 1);
    }
    assert!(
        per_claimer.iter().filter(|&&n| n > 0).count() >= 2,
        "work spread over the claimers: {per_claimer:?}"
    );
}

pub(crate) async fn transactional_enqueue_commits_with_the_business_row(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let mut wakeup = outbox.subscribe();
    wakeup.mark_seen();
    let m = msg("invoice_notification").idempotency_key("inv-2");
    let id = m.id().clone();
    let out = db
        .enqueue_with_invoice("inv-2", vec![m, msg("invoice_notification")], true)
        .await
        .expect("enqueue in the application's transaction");
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|e| !e.deduplicated));
    assert!(db.invoice_exists("inv-2").await);
    tokio::time::timeout(Duration::from_secs(5), wakeup.wait())
        .await
        .expect("the workers are woken after the commit");
    let claimed = claim_all(&*outbox, "w").await;
    assert_eq!(claimed.len(), 2);
    assert!(claimed.contains(&id));
    // Its key deduplicates like any other.
    let dup = outbox
        .enqueue(vec![msg("invoice_notification").idempotency_key("inv-2")])
        .await
        .expect("enqueue");
    assert!(dup[0].deduplicated);
    assert_eq!(dup[0].id, id);
}

pub(crate) async fn rollback_sends_nothing(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let m = msg("invoice_notification").idempotency_key("inv-1");
    let id = m.id().clone();
    db.enqueue_with_invoice("inv-1", vec![m], false)
        .await
        .expect("enqueue in the application's transaction");
    assert!(
        !db.invoice_exists("inv-1").await,
        "the business row is gone"
    );
    assert!(
        outbox.get(&id).await.expect("get").is_none(),
        "so is its message"
    );
    assert!(claim_all(&*outbox, "w").await.is_empty());
    assert_eq!(db.live_rows().await, 0);
    // The key was rolled back with it: the same send goes through now.
    let out = outbox
        .enqueue(vec![msg("invoice_notification").idempotency_key("inv-1")])
        .await
        .expect("enqueue");
    assert!(!out[0].deduplicated);
}
