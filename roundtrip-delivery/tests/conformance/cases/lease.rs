//! Leases: claims, due times, expiry and takeover, renewal, release, and the crash cap.

use super::*;

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

    // Each claimer is its own store instance, as separate processes would be. All are
    // open before any claims, and they start together: a claimer still connecting while
    // the first drains the queue would prove nothing about concurrent claims.
    let mut stores = vec![db.outbox()];
    for _ in 1..CLAIMERS {
        stores.push(db.reopen().await);
    }
    let start = Arc::new(tokio::sync::Barrier::new(CLAIMERS));
    let mut tasks = Vec::new();
    for (c, store) in stores.into_iter().enumerate() {
        let start = Arc::clone(&start);
        tasks.push(tokio::spawn(async move {
            let owner = format!("claimer-{c}");
            let mut mine = Vec::new();
            start.wait().await;
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
