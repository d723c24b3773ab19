//! The in-process fast path: messages a process enqueues go leased, in the enqueue's own
//! transaction, to that process's dispatcher, with no claim; and they stay as safe as
//! claimed ones.

use std::sync::Arc;

use roundtrip_delivery::outbox::{LocalDelivery, LocalMessage};
use tokio::sync::{Semaphore, mpsc};

use super::*;

const LOCAL: &str = "local-dispatcher";

/// Attaches a dispatcher's end with `slots` free slots; answers its slots and inbox.
fn attach(
    outbox: &dyn Outbox,
    slots: usize,
    store: &str,
) -> (Arc<Semaphore>, mpsc::UnboundedReceiver<LocalMessage>) {
    let slots = Arc::new(Semaphore::new(slots));
    let (tx, rx) = mpsc::unbounded_channel();
    let local = LocalDelivery::new(LOCAL, Duration::from_secs(60), slots.clone(), tx);
    assert!(
        outbox.deliver_locally(local),
        "{store}: the store has an in-process fast path"
    );
    (slots, rx)
}

/// The next handed-over message, within the deadline.
async fn received(rx: &mut mpsc::UnboundedReceiver<LocalMessage>) -> LocalMessage {
    tokio::time::timeout(crate::harness::DEADLINE, rx.recv())
        .await
        .expect("a message is handed over in time")
        .expect("the inbox is open")
}

pub(crate) async fn enqueues_go_leased_to_the_local_dispatcher_without_a_claim(
    f: &dyn StoreFactory,
) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let (slots, mut inbox) = attach(outbox.as_ref(), 2, f.name());
    let mut wakeup = outbox.subscribe();
    wakeup.mark_seen();

    let before = now();
    let sent = ids(&outbox
        .enqueue(vec![msg("a"), msg("b")])
        .await
        .expect("enqueue"));
    // Both fit the two free slots: each arrives leased, with a slot, as a claim answers it.
    let mut got = Vec::new();
    for _ in 0..2 {
        let local = received(&mut inbox).await;
        let meta = &local.message.meta;
        assert_eq!(meta.status, MessageStatus::Leased);
        let lease = meta.lease.as_ref().expect("a lease");
        assert_eq!(lease.owner, LOCAL);
        assert!(lease.expires_at >= before + Duration::from_secs(59));
        assert_eq!(meta.attempts, 0);
        assert_eq!(local.message.body, &br#"{"paid":true}"#[..]);
        // The store says the same: the row was written leased in the enqueue.
        let stored = outbox.get(&meta.id).await.expect("get").expect("kept");
        assert_eq!(stored.meta.status, MessageStatus::Leased);
        assert_eq!(
            stored.meta.lease.as_ref().map(|l| l.owner.as_str()),
            Some(LOCAL)
        );
        got.push(local);
    }
    let mut got_ids: Vec<MessageId> = got.iter().map(|l| l.message.meta.id.clone()).collect();
    got_ids.sort();
    let mut sent_sorted = sent.clone();
    sent_sorted.sort();
    assert_eq!(
        got_ids, sent_sorted,
        "exactly the enqueued messages are handed over"
    );
    assert_eq!(slots.available_permits(), 0, "each holds one slot");
    assert!(
        claim_all(outbox.as_ref(), "worker-b").await.is_empty(),
        "a handed-over message is never claimed by another worker"
    );

    // No free slot: the next message is stored pending, wakes the workers, and is claimed.
    let third = ids(&outbox.enqueue(vec![msg("c")]).await.expect("enqueue"));
    tokio::time::timeout(crate::harness::DEADLINE, wakeup.wait())
        .await
        .expect("a pending message wakes the workers");
    assert_eq!(claim_all(outbox.as_ref(), "worker-b").await, third);
    assert!(
        inbox.try_recv().is_err(),
        "nothing is handed over without a slot"
    );

    // The dispatcher reports under the lease it was handed.
    let first = &got[0].message.meta.id;
    let statuses = outbox
        .complete(vec![success(first, LOCAL, 1)])
        .await
        .expect("complete");
    assert_eq!(statuses, vec![LeaseCheck::Held]);
    let done = outbox.get(first).await.expect("get").expect("kept");
    assert_eq!(done.meta.status, MessageStatus::Succeeded);
    assert_eq!(outbox.attempts(first).await.expect("attempts").len(), 1);

    // Freed slots take new messages again; a deduplicated send is never handed over.
    drop(got);
    let keyed = msg("d").idempotency_key("k-1");
    let keyed_id = ids(&outbox.enqueue(vec![keyed]).await.expect("enqueue"));
    let local = received(&mut inbox).await;
    assert_eq!(vec![local.message.meta.id.clone()], keyed_id);
    let again = outbox
        .enqueue(vec![msg("d").idempotency_key("k-1")])
        .await
        .expect("enqueue");
    assert!(again[0].deduplicated);
    assert_eq!(again[0].id, keyed_id[0]);
    assert!(inbox.try_recv().is_err(), "a duplicate is not handed over");
}

pub(crate) async fn handed_over_messages_survive_a_crash(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let (_slots, mut inbox) = attach(outbox.as_ref(), 8, f.name());
    let sent = ids(&outbox
        .enqueue((0..3).map(|_| msg("a")).collect())
        .await
        .expect("enqueue"));
    for _ in 0..3 {
        received(&mut inbox).await;
    }
    // The process dies with the messages handed over and nothing recorded: a second
    // process (or this one restarted) takes them back under the same owner name.
    drop(inbox);
    let other = db.reopen().await;
    let back = other.reclaim_owner(LOCAL).await.expect("reclaim");
    assert_eq!(back.requeued, 3, "every handed-over message is taken back");
    let mut claimed = claim_all(other.as_ref(), "worker-b").await;
    claimed.sort();
    let mut sent = sent;
    sent.sort();
    assert_eq!(claimed, sent, "nothing is lost");

    // A dispatcher that stopped gets nothing more: new messages stay pending.
    let later = ids(&outbox.enqueue(vec![msg("b")]).await.expect("enqueue"));
    assert_eq!(claim_all(other.as_ref(), "worker-b").await, later);
}

/// The write that records a batch of attempts may lease the next due messages to the local
/// dispatcher in the same commit, one per slot the batch frees; the slots it does not use
/// stay the caller's, and every message is either handed over or still pending.
pub(crate) async fn completions_refill_the_slots_they_free(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let (slots, mut inbox) = attach(outbox.as_ref(), 2, f.name());
    // The dispatcher's two slots are taken: a backlog builds up, pending.
    let mut freed = vec![
        slots.clone().try_acquire_owned().expect("a slot"),
        slots.clone().try_acquire_owned().expect("a slot"),
    ];
    let sent = ids(&outbox
        .enqueue((0..5).map(|_| msg("a")).collect())
        .await
        .expect("enqueue"));
    assert!(
        inbox.try_recv().is_err(),
        "no free slot, nothing handed over"
    );
    let first = outbox
        .claim(LOCAL, 2, Duration::from_secs(60))
        .await
        .expect("claim");
    let first: Vec<MessageId> = first.iter().map(|m| m.meta.id.clone()).collect();
    assert_eq!(first, sent[..2]);

    let before = now();
    let statuses = outbox
        .complete_and_refill(
            vec![success(&first[0], LOCAL, 1), success(&first[1], LOCAL, 1)],
            &mut freed,
        )
        .await
        .expect("complete");
    assert_eq!(statuses, vec![LeaseCheck::Held; 2]);
    for id in &first {
        let done = outbox.get(id).await.expect("get").expect("kept");
        assert_eq!(done.meta.status, MessageStatus::Succeeded);
    }
    let mut handed = Vec::new();
    while let Ok(local) = inbox.try_recv() {
        handed.push(local);
    }
    assert_eq!(
        handed.len() + freed.len(),
        2,
        "each freed slot is used for one message or given back"
    );
    if f.name() == "sqlite" {
        assert_eq!(handed.len(), 2, "the SQLite store refills");
    }
    let handed_ids: Vec<MessageId> = handed.iter().map(|l| l.message.meta.id.clone()).collect();
    assert_eq!(
        handed_ids,
        sent[2..2 + handed.len()],
        "the oldest due first"
    );
    for local in &handed {
        let meta = &local.message.meta;
        assert_eq!(meta.status, MessageStatus::Leased);
        let lease = meta.lease.as_ref().expect("a lease");
        assert_eq!(lease.owner, LOCAL);
        assert!(lease.expires_at >= before + Duration::from_secs(59));
        let stored = outbox.get(&meta.id).await.expect("get").expect("kept");
        assert_eq!(
            stored.meta.lease.as_ref().map(|l| l.owner.as_str()),
            Some(LOCAL)
        );
    }
    let rest = claim_all(outbox.as_ref(), "worker-b").await;
    assert_eq!(rest, sent[2 + handed.len()..], "the others stay pending");

    // No slot given, nothing is leased.
    let more = ids(&outbox.enqueue(vec![msg("b")]).await.expect("enqueue"));
    outbox
        .complete_and_refill(vec![success(&rest[0], "worker-b", 1)], &mut Vec::new())
        .await
        .expect("complete");
    assert!(inbox.try_recv().is_err());
    assert_eq!(claim_all(outbox.as_ref(), "worker-b").await, more);
}
