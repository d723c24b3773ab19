//! Enqueueing: durable, whole, refused when bad, deduplicated by key, and inside the
//! application's own transaction.

use super::*;

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

    // Sends that one store writes together (group commit) still admit only one message per
    // key, and every caller learns, in order, what became of each of its messages.
    let outbox = db.outbox();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let outbox = outbox.clone();
        tasks.push(tokio::spawn(async move {
            outbox
                .enqueue(vec![msg("keyed").idempotency_key("same-key"), msg("free")])
                .await
        }));
    }
    let mut keyed_ids = BTreeSet::new();
    let mut stored = 0;
    for t in tasks {
        let out = t.await.expect("join").expect("enqueue");
        assert_eq!(out.len(), 2, "one answer per message, in order");
        keyed_ids.insert(out[0].id.to_string());
        stored += out.iter().filter(|e| !e.deduplicated).count();
        assert!(!out[1].deduplicated);
    }
    assert_eq!(keyed_ids.len(), 1, "every caller got the one stored id");
    assert_eq!(stored, 51);
    assert_eq!(db.live_rows().await, 1 + 51);
}

pub(crate) async fn concurrent_enqueues_share_commits(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    // Plain sends, then sends that each carry an idempotency key (another way in).
    for (round, sends) in [(0, 200_u64), (1, 300)] {
        let before = db.commit_stats();
        let mut tasks = Vec::new();
        for i in 0..sends {
            let outbox = outbox.clone();
            let m = msg(&format!("n{}", i % 3));
            let m = if round == 1 {
                m.idempotency_key(format!("k{i}"))
            } else {
                m
            };
            tasks.push(tokio::spawn(async move { outbox.enqueue(vec![m]).await }));
        }
        for t in tasks {
            let out = t.await.expect("join").expect("enqueue");
            assert!(!out[0].deduplicated);
        }
        let after = db.commit_stats();
        let transactions = after.transactions - before.transactions;
        assert_eq!(after.jobs - before.jobs, sends);
        assert!(
            transactions * f.commit_sharing() <= sends,
            "{sends} concurrent enqueues used {transactions} transactions; group commit should \
             share them"
        );
    }
    assert_eq!(db.live_rows().await, 500);
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
