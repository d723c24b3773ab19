//! Completions: attempts recorded and messages moved on, under the reporter's lease only;
//! the attempts of a message and the attempt log.

use super::*;

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

/// One batch folds the completions of many messages, owners and decisions; a message
/// reported twice in the batch is decided by its first report only.
pub(crate) async fn one_batch_mixes_owners_decisions_and_repeats(f: &dyn StoreFactory) {
    let db = f.fresh(StoreConfig::default()).await;
    let outbox = db.outbox();
    let mine = ids(&outbox
        .enqueue(vec![msg("a"), msg("b"), msg("c")])
        .await
        .expect("enqueue"));
    assert_eq!(claim_all(&*outbox, "w1").await.len(), 3);
    let theirs = ids(&outbox
        .enqueue(vec![msg("d"), msg("e")])
        .await
        .expect("enqueue"));
    assert_eq!(claim_all(&*outbox, "w2").await.len(), 2);
    let gone = Decision::Failed {
        reason: "410 Gone: the receiver asked to stop".into(),
    };
    let later = now() + Duration::from_secs(3600);
    let statuses = outbox
        .complete(vec![
            success(&mine[0], "w1", 1),
            failure(&theirs[0], "w2", 1, gone.clone()),
            failure(&mine[1], "w1", 1, retry_at(later)),
            success(&theirs[1], "w2", 1),
            // Repeats: recorded as attempts, answered as lost, never applied.
            failure(&mine[0], "w1", 2, gone.clone()),
            success(&mine[1], "w1", 2),
            // Lost: not this owner's lease.
            failure(&mine[2], "w2", 1, gone),
        ])
        .await
        .expect("complete");
    assert_eq!(
        statuses,
        vec![
            LeaseCheck::Held,
            LeaseCheck::Held,
            LeaseCheck::Held,
            LeaseCheck::Held,
            LeaseCheck::Lost,
            LeaseCheck::Lost,
            LeaseCheck::Lost,
        ]
    );
    let status = |m: roundtrip_delivery::message::Message| (m.meta.status, m.meta.attempts);
    let get = |id: &MessageId| {
        let outbox = outbox.clone();
        let id = id.clone();
        async move { outbox.get(&id).await.expect("get").expect("kept") }
    };
    assert_eq!(status(get(&mine[0]).await), (MessageStatus::Succeeded, 1));
    assert_eq!(status(get(&mine[1]).await), (MessageStatus::Pending, 1));
    assert_eq!(status(get(&mine[2]).await), (MessageStatus::Leased, 0));
    let failed = get(&theirs[0]).await;
    assert_eq!(
        failed.meta.last_error.as_deref(),
        Some("410 Gone: the receiver asked to stop")
    );
    assert_eq!(status(failed), (MessageStatus::Failed, 1));
    assert_eq!(status(get(&theirs[1]).await), (MessageStatus::Succeeded, 1));
    // Every report is in the attempt log, the repeats too.
    for (id, n) in [(&mine[0], 2), (&mine[1], 2), (&mine[2], 1), (&theirs[0], 1)] {
        assert_eq!(
            outbox.attempts(id).await.expect("attempts").len(),
            n,
            "{id}"
        );
    }
    // Only the message still leased and the retry stay in the live table.
    assert_eq!(db.live_rows().await, 2);
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
