//! The workers against a MockReceiver on loopback, with compressed retry schedules.
//!
//! No test sleeps to wait for a result: each polls the outbox or the receiver with a
//! deadline. The only traffic is to 127.0.0.1; the SSRF tests rely on the guard refusing
//! before any connection.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use roundtrip_delivery::message::{
    Attempt, AttemptErrorKind, Message, MessageId, MessageMeta, MessageStatus, NewMessage,
};
use roundtrip_delivery::outbox::Outbox;
use roundtrip_delivery::retry::RetrySchedule;
use roundtrip_delivery::signing::Secret;
use roundtrip_delivery::sqlite::SqliteOutbox;
use roundtrip_delivery::ssrf::{SsrfPolicy, StaticResolver};
use roundtrip_delivery::worker::{Dispatcher, DispatcherConfig, StartError, StaticSecrets};
use roundtrip_test::{Behaviour, MockReceiver};
use url::Url;

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "roundtrip-worker-{}-{}",
            std::process::id(),
            MessageId::generate()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Loopback allowed, short timeouts, and a schedule of `delays` without jitter.
fn config(secret: Secret, delays: &[u64]) -> DispatcherConfig {
    DispatcherConfig::new(StaticSecrets::new(secret))
        .ssrf_policy(SsrfPolicy::default().allow_loopback(true))
        .retry_schedule(
            RetrySchedule::from_delays(delays.iter().map(|&d| ms(d)))
                .with_jitter(0.0)
                .with_throttle_floor(ms(20))
                .with_retry_after_max(ms(300)),
        )
        .poll_interval(ms(50))
        .connect_timeout(ms(300))
        .request_timeout(ms(400))
        .lease(Duration::from_secs(3))
}

struct Rig {
    _dir: TempDir,
    outbox: Arc<SqliteOutbox>,
    receiver: MockReceiver,
}

impl Rig {
    async fn new() -> Self {
        let dir = TempDir::new();
        let outbox = Arc::new(
            SqliteOutbox::open_path(dir.0.join("outbox.db"))
                .await
                .expect("open store"),
        );
        let receiver = MockReceiver::start().await;
        Rig {
            _dir: dir,
            outbox,
            receiver,
        }
    }

    async fn start(&self, config: DispatcherConfig) -> Dispatcher {
        Dispatcher::start(self.outbox.clone(), config)
            .await
            .expect("start dispatcher")
    }

    async fn send(&self, message: NewMessage) -> MessageId {
        let id = message.id().clone();
        self.outbox.enqueue(vec![message]).await.expect("enqueue");
        id
    }

    fn hook(&self) -> NewMessage {
        NewMessage::callback(
            "invoice_notification",
            self.receiver.url("/hook"),
            r#"{"description":"paid","paid":true}"#,
        )
    }

    /// Polls the outbox until the message reaches `status`.
    /// The one attempt `id` had.
    async fn only_attempt(&self, id: &MessageId) -> Attempt {
        let mut attempts = self.outbox.attempts(id).await.expect("attempts");
        assert_eq!(attempts.len(), 1, "{attempts:?}");
        attempts.remove(0)
    }

    async fn wait_status(&self, id: &MessageId, status: MessageStatus) -> Message {
        let until = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut last = None;
        while tokio::time::Instant::now() < until {
            let got = self.outbox.get(id).await.expect("get").expect("exists");
            if got.meta.status == status {
                return got;
            }
            last = Some(got.meta.status);
            tokio::time::sleep(ms(5)).await;
        }
        panic!("message {id} did not reach {status} within 5 s; last seen {last:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_twice_then_succeeding_records_three_signed_attempts() {
    let rig = Rig::new().await;
    rig.receiver.set_behaviour(Behaviour::fail_times(2, 503));
    // 600 ms between attempts: the first and the third are in different seconds, so their
    // webhook-timestamps must differ.
    let dispatcher = rig
        .start(config(rig.receiver.secret(), &[600, 600, 600]))
        .await;
    let id = rig.send(rig.hook()).await;

    let done = rig.wait_status(&id, MessageStatus::Succeeded).await;
    assert_eq!(done.meta.attempts, 3);
    let deliveries = rig.receiver.deliveries();
    assert_eq!(deliveries.len(), 3);
    assert!(
        deliveries.iter().all(|d| d.verified),
        "{:?}",
        deliveries
            .iter()
            .map(|d| &d.verify_error)
            .collect::<Vec<_>>()
    );
    assert!(
        deliveries
            .iter()
            .all(|d| d.webhook_id() == Some(id.as_str()))
    );
    let stamps: Vec<i64> = deliveries.iter().filter_map(|d| d.timestamp()).collect();
    assert_eq!(stamps.len(), 3);
    assert!(
        stamps[2] > stamps[0],
        "timestamps are per attempt: {stamps:?}"
    );
    let d = &deliveries[0];
    assert_eq!(d.header("content-type"), Some("application/json"));
    assert!(
        d.header("user-agent")
            .is_some_and(|ua| ua.contains("roundtrip"))
    );
    assert_eq!(d.path, "/hook");
    assert_eq!(d.body, &br#"{"description":"paid","paid":true}"#[..]);

    let attempts = rig.outbox.attempts(&id).await.expect("attempts");
    let numbers: Vec<u32> = attempts.iter().map(|a| a.number).collect();
    assert_eq!(numbers, vec![1, 2, 3]);
    let statuses: Vec<Option<u16>> = attempts.iter().map(|a| a.response_status).collect();
    assert_eq!(statuses, vec![Some(503), Some(503), Some(200)]);
    let outcomes: Vec<&str> = attempts.iter().map(|a| a.decision.as_str()).collect();
    assert_eq!(outcomes, vec!["retry", "retry", "succeeded"]);
    for (a, stamp) in attempts.iter().zip(&stamps) {
        let started = a
            .started_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after epoch")
            .as_secs() as i64;
        assert_eq!(started, *stamp, "webhook-timestamp is the attempt's start");
    }
    let stats = dispatcher.stats();
    assert_eq!((stats.attempts, stats.retried, stats.succeeded), (3, 2, 1));
    dispatcher.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_stops_the_retries_at_once() {
    let rig = Rig::new().await;
    rig.receiver.set_behaviour(Behaviour::Status(410));
    let dispatcher = rig
        .start(config(rig.receiver.secret(), &[10, 10, 10]))
        .await;
    let id = rig.send(rig.hook()).await;
    let failed = rig.wait_status(&id, MessageStatus::Failed).await;
    assert_eq!(failed.meta.attempts, 1);
    let why = failed.meta.last_error.unwrap_or_default();
    assert!(why.contains("410"), "{why}");
    assert_eq!(rig.receiver.count(), 1);
    dispatcher.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_honour_retry_after_within_bounds() {
    let rig = Rig::new().await;
    // Asks for 30 s; the schedule says 10 ms and caps Retry-After at 300 ms.
    rig.receiver.set_behaviour(Behaviour::RetryAfter {
        status: 503,
        retry_after: "30".into(),
        times: 1,
    });
    let dispatcher = rig.start(config(rig.receiver.secret(), &[10, 10])).await;
    let id = rig.send(rig.hook()).await;
    rig.wait_status(&id, MessageStatus::Succeeded).await;
    let attempts = rig.outbox.attempts(&id).await.expect("attempts");
    assert_eq!(attempts.len(), 2);
    let gap = attempts[1]
        .started_at
        .duration_since(attempts[0].started_at)
        .expect("ordered");
    assert!(gap >= ms(290), "Retry-After waited only {gap:?}");
    assert!(gap < ms(2000), "Retry-After is capped, waited {gap:?}");
    dispatcher.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed_and_count_as_failures() {
    let rig = Rig::new().await;
    let elsewhere = rig.receiver.url("/elsewhere").to_string();
    rig.receiver.set_behaviour(Behaviour::redirect(elsewhere));
    let dispatcher = rig.start(config(rig.receiver.secret(), &[10, 10])).await;
    let id = rig.send(rig.hook()).await;
    let failed = rig.wait_status(&id, MessageStatus::Failed).await;
    assert_eq!(failed.meta.attempts, 3, "a redirect is retried, then fails");
    let deliveries = rig.receiver.deliveries();
    assert_eq!(deliveries.len(), 3);
    assert!(
        deliveries.iter().all(|d| d.path == "/hook"),
        "never followed"
    );
    let attempts = rig.outbox.attempts(&id).await.expect("attempts");
    assert!(attempts.iter().all(|a| a.response_status == Some(302)));
    dispatcher.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_is_cut_by_the_total_timeout() {
    let rig = Rig::new().await;
    rig.receiver.set_behaviour(Behaviour::Hang);
    let dispatcher = rig.start(config(rig.receiver.secret(), &[])).await;
    let id = rig.send(rig.hook()).await;
    rig.wait_status(&id, MessageStatus::Failed).await;
    let a = rig.only_attempt(&id).await;
    assert_eq!(
        a.error.as_ref().map(|e| e.kind),
        Some(AttemptErrorKind::Timeout),
        "{a:?}"
    );
    assert!(
        a.duration >= ms(390) && a.duration < ms(3000),
        "{:?}",
        a.duration
    );
    assert_eq!(a.response_status, None);
    dispatcher.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_accepts_is_cut_by_the_connect_timeout() {
    // A listener with a backlog of one that never accepts: once its queue is full, the
    // kernel drops further SYNs, so a connect neither succeeds nor fails.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("address"))
        .expect("bind");
    let listener = socket.listen(1).expect("listen");
    let addr = listener.local_addr().expect("address");
    let mut queued = Vec::new();
    loop {
        match tokio::time::timeout(ms(200), tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => queued.push(stream),
            Ok(Err(err)) => panic!("loopback connect failed: {err}"),
            Err(_) => break,
        }
        assert!(queued.len() < 64, "the accept queue never filled");
    }

    let rig = Rig::new().await;
    let dispatcher = rig
        .start(
            config(rig.receiver.secret(), &[])
                .connect_timeout(ms(200))
                .request_timeout(Duration::from_secs(3))
                .lease(Duration::from_secs(5)),
        )
        .await;
    let url = url::Url::parse(&format!("http://{addr}/hook")).expect("url");
    let id = rig
        .send(NewMessage::callback("invoice_notification", url, "{}"))
        .await;
    rig.wait_status(&id, MessageStatus::Failed).await;
    let a = rig.only_attempt(&id).await;
    assert_eq!(
        a.error.as_ref().map(|e| e.kind),
        Some(AttemptErrorKind::Timeout),
        "{a:?}"
    );
    assert!(
        a.duration >= ms(190) && a.duration < ms(1500),
        "cut by the connect timeout, well before the 3 s total: {:?}",
        a.duration
    );
    drop(listener);
    dispatcher.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_connection_is_recorded_and_retried() {
    let rig = Rig::new().await;
    rig.receiver.set_behaviour(Behaviour::Reset);
    let dispatcher = rig.start(config(rig.receiver.secret(), &[10])).await;
    let id = rig.send(rig.hook()).await;
    let failed = rig.wait_status(&id, MessageStatus::Failed).await;
    assert_eq!(failed.meta.attempts, 2);
    let attempts = rig.outbox.attempts(&id).await.expect("attempts");
    for a in &attempts {
        let error = a.error.as_ref().expect("an error is recorded");
        assert!(
            matches!(error.kind, AttemptErrorKind::Io | AttemptErrorKind::Connect),
            "{error:?}"
        );
        assert!(!error.message.contains("127.0.0.1"), "no URL in {error:?}");
        assert_eq!(a.response_status, None);
    }
    assert_eq!(rig.receiver.count(), 2, "the receiver got each request");
    dispatcher.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_response_body_is_capped_not_downloaded() {
    let rig = Rig::new().await;
    rig.receiver.set_behaviour(Behaviour::HugeBody {
        bytes: 5 * 1024 * 1024 * 1024,
    });
    let dispatcher = rig.start(config(rig.receiver.secret(), &[])).await;
    let id = rig.send(rig.hook()).await;
    rig.wait_status(&id, MessageStatus::Succeeded).await;
    let attempts = rig.outbox.attempts(&id).await.expect("attempts");
    assert_eq!(attempts[0].response_status, Some(200));
    assert_eq!(attempts[0].response_body.len(), 4096);
    assert!(attempts[0].response_truncated);
    assert!(attempts[0].duration < Duration::from_secs(2));
    dispatcher.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_with_a_2xx_is_delivered_and_the_hook_records_the_violation() {
    let rig = Rig::new().await;
    rig.receiver.set_behaviour(Behaviour::InvalidJson);
    let check = |_: &MessageMeta, _status: u16, body: &[u8]| -> Option<String> {
        serde_json::from_slice::<serde_json::Value>(body)
            .err()
            .map(|e| format!("the response is not JSON: {e}"))
    };
    let dispatcher = rig
        .start(config(rig.receiver.secret(), &[10]).response_check(check))
        .await;
    let id = rig.send(rig.hook()).await;
    rig.wait_status(&id, MessageStatus::Succeeded).await;
    let attempts = rig.outbox.attempts(&id).await.expect("attempts");
    assert_eq!(attempts.len(), 1, "a 2xx is never retried");
    let violation = attempts[0].contract_violation.as_deref().unwrap_or("");
    assert!(violation.contains("not JSON"), "{violation:?}");
    assert_eq!(&attempts[0].response_body[..], b"{this is not json");
    dispatcher.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ssrf_guard_refuses_private_targets_before_connecting() {
    let rig = Rig::new().await;
    // Loopback is allowed (for the receiver); 10.0.0.0/8 is not. The name resolves, through
    // the injected resolver, to a private address.
    let private: IpAddr = "10.0.0.5".parse().expect("ip");
    let resolver = StaticResolver::new().with_host("internal.test", [private]);
    let dispatcher = rig
        .start(config(rig.receiver.secret(), &[10, 10]).resolver(resolver))
        .await;
    let literal = rig
        .send(NewMessage::callback(
            "x",
            Url::parse("http://10.0.0.1/").expect("url"),
            "{}",
        ))
        .await;
    let named = rig
        .send(NewMessage::callback(
            "x",
            Url::parse("http://internal.test:8080/hook?token=secret").expect("url"),
            "{}",
        ))
        .await;
    for id in [&literal, &named] {
        let failed = rig.wait_status(id, MessageStatus::Failed).await;
        assert_eq!(failed.meta.attempts, 1, "a refusal is not retried");
        let attempts = rig.outbox.attempts(id).await.expect("attempts");
        let error = attempts[0].error.as_ref().expect("error");
        assert_eq!(error.kind, AttemptErrorKind::Refused, "{error:?}");
        assert!(error.message.contains("10.0.0."), "{}", error.message);
        assert!(!error.message.contains("token=secret"), "{}", error.message);
        assert_eq!(attempts[0].response_status, None);
    }
    assert_eq!(rig.receiver.count(), 0);
    dispatcher.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cuts_attempts_at_the_deadline_and_releases_their_leases() {
    let rig = Rig::new().await;
    rig.receiver.set_behaviour(Behaviour::Hang);
    let dispatcher = rig
        .start(
            config(rig.receiver.secret(), &[10])
                .request_timeout(Duration::from_secs(5))
                .lease(Duration::from_secs(20)),
        )
        .await;
    let ids = [
        rig.send(rig.hook()).await,
        rig.send(rig.hook()).await,
        rig.send(rig.hook()).await,
    ];
    rig.receiver
        .wait_for(3, Duration::from_secs(5))
        .await
        .expect("three requests in flight");
    let report = dispatcher.shutdown(ms(100)).await;
    assert_eq!(report.abandoned, 3);
    assert_eq!(report.released, 3);
    for id in &ids {
        let m = rig.outbox.get(id).await.expect("get").expect("exists");
        assert_eq!(m.meta.status, MessageStatus::Pending);
        assert!(m.meta.lease.is_none());
        assert_eq!(m.meta.lost_leases, 0, "a graceful release is not a crash");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_attempts_in_flight_finish_and_records_them() {
    let rig = Rig::new().await;
    rig.receiver.set_behaviour(Behaviour::Delay(ms(200)));
    let dispatcher = rig.start(config(rig.receiver.secret(), &[10])).await;
    let id = rig.send(rig.hook()).await;
    rig.receiver
        .wait_for(1, Duration::from_secs(5))
        .await
        .expect("in flight");
    let report = dispatcher.shutdown(Duration::from_secs(3)).await;
    assert_eq!(report.abandoned, 0);
    assert!(report.completions_recorded);
    let m = rig.outbox.get(&id).await.expect("get").expect("exists");
    assert_eq!(m.meta.status, MessageStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_messages_are_each_delivered_once_within_the_limits() {
    let rig = Rig::new().await;
    let dispatcher = rig
        .start(
            config(rig.receiver.secret(), &[10])
                .max_in_flight(16)
                .per_destination(4),
        )
        .await;
    let messages: Vec<NewMessage> = (0..300).map(|_| rig.hook()).collect();
    rig.outbox.enqueue(messages).await.expect("enqueue");
    rig.receiver
        .wait_for_unique(300, Duration::from_secs(10))
        .await
        .expect("all delivered");
    assert_eq!(rig.receiver.count(), 300, "none twice without a crash");
    assert!(rig.receiver.peak_concurrency() <= 4, "per destination");
    dispatcher.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_destination_gets_at_most_its_limit_and_does_not_hold_up_another() {
    let rig = Rig::new().await;
    let other = MockReceiver::start().await;
    other.set_secrets(vec![rig.receiver.secret()]);
    for receiver in [&rig.receiver, &other] {
        receiver.set_behaviour(Behaviour::Delay(Duration::from_millis(30)));
    }
    let dispatcher = rig
        .start(
            config(rig.receiver.secret(), &[10])
                .max_in_flight(16)
                .per_destination(4),
        )
        .await;
    let mut messages: Vec<NewMessage> = (0..24).map(|_| rig.hook()).collect();
    messages.extend((0..24).map(|_| NewMessage::callback("hook", other.url("/hook"), "{}")));
    rig.outbox.enqueue(messages).await.expect("enqueue");
    for receiver in [&rig.receiver, &other] {
        receiver
            .wait_for_unique(24, Duration::from_secs(10))
            .await
            .expect("all delivered");
    }
    let (a, b) = (rig.receiver.peak_concurrency(), other.peak_concurrency());
    assert!(a <= 4 && b <= 4, "at most 4 per destination: {a} and {b}");
    assert!(
        a >= 2 && b >= 2,
        "requests to each destination overlap: {a} and {b}"
    );
    dispatcher.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_are_bounded_below_the_per_destination_limit() {
    let rig = Rig::new().await;
    rig.receiver
        .set_behaviour(Behaviour::Delay(Duration::from_millis(30)));
    let dispatcher = rig
        .start(
            config(rig.receiver.secret(), &[10])
                .max_in_flight(3)
                .per_destination(8),
        )
        .await;
    let messages: Vec<NewMessage> = (0..24).map(|_| rig.hook()).collect();
    rig.outbox.enqueue(messages).await.expect("enqueue");
    rig.receiver
        .wait_for_unique(24, Duration::from_secs(10))
        .await
        .expect("all delivered");
    let peak = rig.receiver.peak_concurrency();
    assert!(
        (2..=3).contains(&peak),
        "at most 3 in flight, and some overlap: {peak}"
    );
    dispatcher.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_lease_shorter_than_the_request_timeout_is_refused_at_start() {
    let rig = Rig::new().await;
    let config = config(rig.receiver.secret(), &[])
        .request_timeout(Duration::from_secs(15))
        .lease(Duration::from_secs(10));
    let err = Dispatcher::start(rig.outbox.clone(), config)
        .await
        .expect_err("lease too short");
    assert!(matches!(err, StartError::Config(_)));
    assert!(
        err.to_string().contains("longer than the request timeout"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_under_the_same_name_takes_back_its_leases_at_once() {
    let rig = Rig::new().await;
    let id = rig.send(rig.hook()).await;
    // A previous run of "replica-1" claimed the message and died.
    let held = rig
        .outbox
        .claim("replica-1", 10, Duration::from_secs(600))
        .await
        .expect("claim");
    assert_eq!(held.len(), 1);
    let dispatcher = rig
        .start(config(rig.receiver.secret(), &[10]).worker_id("replica-1"))
        .await;
    let done = rig.wait_status(&id, MessageStatus::Succeeded).await;
    assert_eq!(done.meta.lost_leases, 1);
    dispatcher.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_by_this_process_is_delivered_without_a_claim() {
    let rig = Rig::new().await;
    // Polling is off for the length of the test: only the hand-over (or a wake-up, which
    // would mean a claim) can start an attempt.
    let dispatcher = rig
        .start(config(rig.receiver.secret(), &[10]).poll_interval(Duration::from_secs(60)))
        .await;
    for n in 1..=5 {
        let id = rig.send(rig.hook()).await;
        let delivered = rig.wait_status(&id, MessageStatus::Succeeded).await;
        assert_eq!(delivered.meta.attempts, 1);
        assert_eq!(rig.receiver.count(), n, "each message arrives once");
        let last = rig
            .receiver
            .deliveries()
            .last()
            .cloned()
            .expect("a delivery");
        assert_eq!(
            last.webhook_id(),
            Some(id.as_str()),
            "the receiver got this message"
        );
    }
    let stats = dispatcher.stats();
    assert_eq!(
        stats.handed_over, 5,
        "every message was handed over: {stats:?}"
    );
    assert_eq!(stats.claimed, 0, "none was claimed: {stats:?}");
    assert!(
        stats.claims <= 1,
        "no claim after the dispatcher's first look at the queue: {stats:?}"
    );
    dispatcher.shutdown(Duration::from_secs(1)).await;
}
