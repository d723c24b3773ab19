//! What users and operators do: retry, replay, cancel, retarget, list, and purge.

use super::*;

pub(crate) async fn retry_replay_and_cancel_follow_the_states(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let batch: Vec<NewMessage> = (0..5)
        .map(|i| msg(if i < 3 { "paid" } else { "sent" }))
        .collect();
    let all: Vec<MessageId> = batch.iter().map(|m| m.id().clone()).collect();
    outbox.enqueue(batch).await.expect("enqueue");

    // A pending message is made due now (it is already); an unknown one is not found.
    let due = outbox
        .retry(&all[0])
        .await
        .expect("retry a pending message");
    assert_eq!(due.status, MessageStatus::Pending);
    assert!(
        due.next_attempt_at
            .is_some_and(|at| at <= SystemTime::now())
    );
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

pub(crate) async fn retry_now_ends_a_backoff_but_not_a_lease(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let first = msg("paid");
    let id = first.id().clone();
    outbox.enqueue(vec![first]).await.expect("enqueue");
    assert_eq!(claim_all(&*outbox, "w").await, vec![id.clone()]);

    // Leased: an attempt is running, so it cannot be retried now.
    let leased = outbox.retry(&id).await.expect_err("leased");
    assert!(leased.is_conflict(), "{leased}");

    // Backing off for an hour: not claimable, until a retry makes it due now.
    outbox
        .complete(vec![failure(
            &id,
            "w",
            1,
            retry_in(Duration::from_secs(3600)),
        )])
        .await
        .expect("complete");
    assert!(claim_all(&*outbox, "w").await.is_empty(), "backing off");
    let before = SystemTime::now();
    let due = outbox.retry(&id).await.expect("retry now");
    assert_eq!(due.status, MessageStatus::Pending);
    assert_eq!(due.attempts, 1, "the attempt count is kept");
    let at = due.next_attempt_at.expect("due");
    assert!(
        at <= SystemTime::now() && at + Duration::from_secs(5) >= before,
        "due now"
    );
    assert_eq!(claim_all(&*outbox, "w").await, vec![id]);
}

pub(crate) async fn listings_filter_by_host_and_ids(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let to =
        |url: &str| NewMessage::callback("paid", Url::parse(url).expect("url"), r#"{"paid":true}"#);
    let batch = vec![
        to("http://127.0.0.1:9/hook"),
        to("https://127.0.0.1/hook"),
        to("http://127.0.0.10:9/hook"),
        to("http://localhost:9/x?u=http://127.0.0.1/"),
        to("http://[::1]:9/hook"),
        to("http://user:pass@127.0.0.1:9/hook"),
        to("http://user@localhost:9/x?to=a@127.0.0.1/"),
    ];
    let ids: Vec<MessageId> = batch.iter().map(|m| m.id().clone()).collect();
    outbox.enqueue(batch).await.expect("enqueue");
    let listed = |filter: MessageFilter| {
        let outbox = outbox.clone();
        async move {
            let mut got: Vec<MessageId> = outbox
                .list(&filter)
                .await
                .expect("list")
                .messages
                .into_iter()
                .map(|m| m.id)
                .collect();
            got.sort();
            got
        }
    };
    let mut want = vec![ids[0].clone(), ids[1].clone(), ids[5].clone()];
    want.sort();
    assert_eq!(
        listed(MessageFilter::new().host("127.0.0.1")).await,
        want,
        "any port, scheme and credentials; not a longer host, not an address in the query"
    );
    assert_eq!(
        listed(MessageFilter::new().host("[::1]")).await,
        vec![ids[4].clone()]
    );
    assert!(
        listed(MessageFilter::new().host("127.0.0._"))
            .await
            .is_empty(),
        "literal"
    );
    assert!(
        listed(MessageFilter::new().host("%")).await.is_empty(),
        "literal"
    );
    let mut want = vec![ids[2].clone(), ids[3].clone()];
    want.sort();
    assert_eq!(
        listed(MessageFilter::new().id(ids[2].clone()).id(ids[3].clone())).await,
        want
    );
    assert_eq!(
        listed(
            MessageFilter::new()
                .id(ids[2].clone())
                .id(ids[3].clone())
                .host("localhost")
        )
        .await,
        vec![ids[3].clone()]
    );
    let mut want = vec![ids[3].clone(), ids[6].clone()];
    want.sort();
    assert_eq!(listed(MessageFilter::new().host("LocalHost")).await, want);
}

pub(crate) async fn attempts_keep_capped_response_headers(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let id = ids(&outbox.enqueue(vec![msg("paid")]).await.expect("enqueue"))[0].clone();
    let mut headers = http::HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("set-cookie", HeaderValue::from_static("session=secret"));
    headers.insert(
        "x-long",
        HeaderValue::from_str(&"v".repeat(2000)).expect("value"),
    );
    headers.insert(
        "x-bytes",
        HeaderValue::from_bytes(b"ok \xff").expect("obs-text"),
    );
    for n in 0..70 {
        headers.insert(
            HeaderName::from_bytes(format!("x-extra-{n}").as_bytes()).expect("name"),
            HeaderValue::from_static("1"),
        );
    }

    // The first attempt is answered; the second gets no answer.
    assert_eq!(claim_all(&*outbox, "w").await, vec![id.clone()]);
    let mut answered = failure(&id, "w", 1, retry_at(now() - Duration::from_secs(1)));
    answered.attempt = answered.attempt.clone().response_headers(&headers);
    outbox.complete(vec![answered]).await.expect("complete");
    assert_eq!(claim_all(&*outbox, "w").await, vec![id.clone()]);
    let mut silent = failure(
        &id,
        "w",
        2,
        Decision::Failed {
            reason: "gave up".into(),
        },
    );
    silent.attempt.response_status = None;
    silent.attempt.response_body = Default::default();
    silent.attempt = silent
        .attempt
        .clone()
        .error(AttemptErrorKind::Timeout, "no answer");
    outbox.complete(vec![silent]).await.expect("complete");

    let attempts = outbox.attempts(&id).await.expect("attempts");
    assert_eq!(attempts.len(), 2);
    let kept = &attempts[0].response_headers;
    assert_eq!(
        kept.len(),
        roundtrip_delivery::message::MAX_RESPONSE_HEADERS
    );
    let value = |name: &str| kept.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(value("content-type").as_deref(), Some("application/json"));
    assert_eq!(value("set-cookie").as_deref(), Some("[not kept]"));
    assert_eq!(
        value("x-long").map(|v| v.len()),
        Some(roundtrip_delivery::message::MAX_RESPONSE_HEADER_BYTES)
    );
    assert_eq!(value("x-bytes").as_deref(), Some("ok \u{fffd}"));
    assert!(
        attempts[1].response_headers.is_empty(),
        "no answer, no headers"
    );
    let log = outbox
        .attempt_log(&AttemptFilter::new().message_id(id.clone()))
        .await
        .expect("log");
    assert_eq!(log.attempts[0].response_headers, *kept);
}
