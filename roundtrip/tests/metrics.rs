//! Delivery metrics: `/metrics` is scraped over HTTP after deliveries that succeed, are
//! retried and fail, and the Prometheus text is parsed to check what every counter and
//! histogram counted. The route is off by default and kept out of the document.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use roundtrip::delivery::retry::RetrySchedule;
use roundtrip::delivery::signing::Secret;
use roundtrip::{
    App, Callback, DeliveryMetrics, Json, Notify, Publisher, Query, SendError, SendOptions,
    Webhook, get, post,
};
use roundtrip_test::{Behaviour, MockReceiver, TempDir, TestClient};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Serialize, Deserialize, JsonSchema)]
struct Order {
    id: String,
    amount: i64,
}

#[derive(Deserialize, JsonSchema)]
struct Target {
    callback_url: String,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone)]
struct Account {
    id: String,
}

fn order_paid() -> Callback<Order> {
    Callback::post(
        "order_paid",
        "{$request.query.callback_url}/orders/{$request.body#/id}",
    )
}

fn account_closed() -> Webhook<Account> {
    Webhook::post("account-closed")
}

/// Sends the order back as the callback, once per order id.
async fn pay(
    Query(t): Query<Target>,
    notify: Notify<Order>,
    Json(order): Json<Order>,
) -> Result<Json<Value>, SendError> {
    let _ = t.callback_url;
    let key = format!("order-{}", order.id);
    let id = notify
        .send_with(order, SendOptions::new().idempotency_key(key))
        .await?;
    Ok(Json(json!({"message": id.to_string()})))
}

async fn close_account(
    publisher: Publisher,
    Query(t): Query<Target>,
    Json(account): Json<Account>,
) -> Result<Json<Value>, SendError> {
    let id = publisher
        .send_to(
            &account_closed(),
            &t.callback_url,
            &account,
            SendOptions::new(),
        )
        .await?;
    Ok(Json(json!({"message": id.to_string()})))
}

fn app(dir: &TempDir, secret: Secret) -> App {
    App::new()
        .route("/orders/", post(pay).callback(order_paid()))
        .route("/accounts/close", post(close_account))
        .webhook(account_closed())
        .database_url(dir.sqlite_url("outbox.db"))
        .signing_secret(secret)
        .allow_loopback_deliveries()
        // One retry, 20 ms later: a message that fails twice fails for good.
        .configure_dispatcher(|config| {
            config.retry_schedule(
                RetrySchedule::from_delays([Duration::from_millis(20)]).with_jitter(0.0),
            )
        })
}

/// One HTTP/1.1 request over a fresh connection: the status, headers and body.
async fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    body: Option<&Value>,
) -> (u16, HashMap<String, String>, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the app listens");
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {target} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("response read");
    let text = String::from_utf8(raw).expect("a UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("headers end");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

/// One sample of the exposition text.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples and the declared `# TYPE` of each metric family, from Prometheus' text
/// format (0.0.4).
fn parse(text: &str) -> (Vec<Sample>, HashMap<String, String>) {
    let mut samples = Vec::new();
    let mut types = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name type");
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|e| panic!("{line:?}: bad value: {e}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), BTreeMap::new()),
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').expect("labels close with }");
                (name.to_owned(), parse_labels(inner, line))
            }
        };
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    (samples, types)
}

/// `a="x",b="y \"q\""` into a map; values may hold escaped quotes, backslashes and
/// newlines.
fn parse_labels(text: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('"'), "{line:?}: a label value is quoted");
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => panic!("{line:?}: a dangling escape"),
                },
                Some('"') => break,
                Some(c) => value.push(c),
                None => panic!("{line:?}: an unterminated label value"),
            }
        }
        labels.insert(key.trim().to_owned(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    labels
}

/// The sum of the samples named `name` whose labels include every pair of `with`.
fn value(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

#[tokio::test]
async fn scraped_metrics_count_enqueues_attempts_retries_failures_and_lag() {
    let dir = TempDir::new();
    let secret = Secret::generate().expect("a secret");
    let ok = MockReceiver::start().await.with_secret(secret.clone());
    let flaky = MockReceiver::start().await.with_secret(secret.clone());
    flaky.set_behaviour(Behaviour::fail_times(1, 503));
    let gone = MockReceiver::start().await.with_secret(secret.clone());
    gone.set_behaviour(Behaviour::Status(410));
    let nowhere = format!("http://127.0.0.1:{}/hooks", closed_port());

    let built = app(&dir, secret.clone())
        .metrics_route("/metrics")
        .build()
        .expect("the app builds");
    assert!(
        !built.openapi.paths.contains_key("/metrics"),
        "the metrics route is not documented"
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("its address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(built.serve_on(listener, async move {
        let _ = stopped.await;
    }));

    // Before anything is sent, nothing is counted.
    let (status, headers, text) = http(addr, "GET", "/metrics", None).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let (samples, _) = parse(&text);
    assert_eq!(
        value(&samples, "roundtrip_delivery_requests_in_flight", &[]),
        0.0
    );
    assert_eq!(
        value(&samples, "roundtrip_delivery_attempts_total", &[]),
        0.0
    );

    // Two callbacks (one sent twice: its idempotency key keeps one message) and two
    // webhooks.
    let sends = [
        (
            "/orders/",
            ok.url("/cb").to_string(),
            json!({"id": "o1", "amount": 1}),
        ),
        (
            "/orders/",
            ok.url("/cb").to_string(),
            json!({"id": "o1", "amount": 1}),
        ),
        (
            "/orders/",
            flaky.url("/cb").to_string(),
            json!({"id": "o2", "amount": 2}),
        ),
        (
            "/accounts/close",
            gone.url("/wh").to_string(),
            json!({"id": "a1"}),
        ),
        ("/accounts/close", nowhere.clone(), json!({"id": "a2"})),
    ];
    for (path, url, body) in &sends {
        let target = format!("{path}?callback_url={url}");
        let (status, _, text) = http(addr, "POST", &target, Some(body)).await;
        assert_eq!(status, 200, "{path}: {text}");
    }

    // Six attempts in all: o1 once, o2 twice (503 then 200), a1 once (410), a2 twice
    // (connection refused, then again).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let (samples, types, text) = loop {
        let (_, _, text) = http(addr, "GET", "/metrics", None).await;
        let (samples, types) = parse(&text);
        let attempts = value(&samples, "roundtrip_delivery_attempts_total", &[]);
        let in_flight = value(&samples, "roundtrip_delivery_requests_in_flight", &[]);
        if attempts >= 6.0 && in_flight == 0.0 {
            break (samples, types, text);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the deliveries did not finish: {text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    for (family, kind) in [
        ("roundtrip_messages_enqueued_total", "counter"),
        ("roundtrip_delivery_attempts_total", "counter"),
        ("roundtrip_delivery_retries_scheduled_total", "counter"),
        ("roundtrip_messages_failed_total", "counter"),
        ("roundtrip_delivery_lag_seconds", "histogram"),
        ("roundtrip_delivery_attempt_duration_seconds", "histogram"),
        ("roundtrip_delivery_requests_in_flight", "gauge"),
    ] {
        assert_eq!(
            types.get(family).map(String::as_str),
            Some(kind),
            "{family}: {text}"
        );
    }
    let callback = [("kind", "callback"), ("name", "order_paid")];
    let webhook = [("kind", "webhook"), ("name", "account-closed")];
    let with = |base: &[(&'static str, &'static str)], more: &[(&'static str, &'static str)]| {
        let mut all = base.to_vec();
        all.extend_from_slice(more);
        all
    };
    let enqueued = "roundtrip_messages_enqueued_total";
    assert_eq!(value(&samples, enqueued, &callback), 2.0, "{text}");
    assert_eq!(value(&samples, enqueued, &webhook), 2.0, "{text}");

    let attempts = "roundtrip_delivery_attempts_total";
    let count = |labels: &[(&str, &str)]| value(&samples, attempts, labels);
    assert_eq!(count(&[]), 6.0, "{text}");
    assert_eq!(
        count(&with(
            &callback,
            &[("outcome", "succeeded"), ("error", "none")]
        )),
        2.0,
        "{text}"
    );
    assert_eq!(
        count(&with(
            &callback,
            &[("outcome", "retry"), ("error", "http_5xx")]
        )),
        1.0,
        "{text}"
    );
    assert_eq!(
        count(&with(
            &webhook,
            &[("outcome", "failed"), ("error", "http_4xx")]
        )),
        1.0,
        "{text}"
    );
    assert_eq!(
        count(&with(
            &webhook,
            &[("outcome", "retry"), ("error", "connect")]
        )),
        1.0,
        "{text}"
    );
    assert_eq!(
        count(&with(
            &webhook,
            &[("outcome", "failed"), ("error", "connect")]
        )),
        1.0,
        "{text}"
    );

    let retries = "roundtrip_delivery_retries_scheduled_total";
    assert_eq!(value(&samples, retries, &callback), 1.0, "{text}");
    assert_eq!(value(&samples, retries, &webhook), 1.0, "{text}");
    let failed = "roundtrip_messages_failed_total";
    assert_eq!(value(&samples, failed, &webhook), 2.0, "{text}");
    assert_eq!(value(&samples, failed, &callback), 0.0, "{text}");

    // The lag: one observation per delivered message, none for failed ones; the buckets
    // are cumulative and end with +Inf holding every observation.
    let lag_count = value(&samples, "roundtrip_delivery_lag_seconds_count", &callback);
    assert_eq!(lag_count, 2.0, "{text}");
    assert_eq!(
        value(&samples, "roundtrip_delivery_lag_seconds_count", &webhook),
        0.0
    );
    let lag_sum = value(&samples, "roundtrip_delivery_lag_seconds_sum", &callback);
    assert!(lag_sum > 0.0 && lag_sum < 20.0, "lag sum {lag_sum}: {text}");
    let mut buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.name == "roundtrip_delivery_lag_seconds_bucket")
        .filter(|s| s.labels.get("name").map(String::as_str) == Some("order_paid"))
        .map(|s| {
            let le = match s.labels.get("le").map(String::as_str) {
                Some("+Inf") => f64::INFINITY,
                Some(le) => le.parse().expect("a numeric le"),
                None => panic!("a bucket without le: {s:?}"),
            };
            (le, s.value)
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.len() > 10, "{text}");
    assert!(
        buckets.windows(2).all(|w| w[0].1 <= w[1].1),
        "cumulative buckets: {buckets:?}"
    );
    assert_eq!(buckets.last(), Some(&(f64::INFINITY, 2.0)));
    // The retried callback waited at least the 20 ms retry delay: not both in the
    // lowest bucket.
    assert!(buckets[0].1 < 2.0, "{buckets:?}");

    assert_eq!(
        value(
            &samples,
            "roundtrip_delivery_attempt_duration_seconds_count",
            &[]
        ),
        6.0,
        "{text}"
    );
    assert_eq!(
        value(&samples, "roundtrip_delivery_requests_in_flight", &[]),
        0.0
    );

    // Labels are bounded: no URL, address, message id or secret appears.
    for leak in [
        "127.0.0.1",
        "/cb",
        "/wh",
        "msg_",
        secret.to_string().as_str(),
    ] {
        assert!(
            !text.contains(leak),
            "`{leak}` appears in the metrics: {text}"
        );
    }
    for sample in &samples {
        for (key, label) in &sample.labels {
            let allowed = match key.as_str() {
                "kind" => ["callback", "webhook"].contains(&label.as_str()),
                "name" => ["order_paid", "account-closed"].contains(&label.as_str()),
                "outcome" => ["succeeded", "retry", "failed"].contains(&label.as_str()),
                "error" => ["none", "http_4xx", "http_5xx", "connect"].contains(&label.as_str()),
                "le" => true,
                _ => false,
            };
            assert!(allowed, "unexpected label {key}={label:?} in {sample:?}");
        }
    }

    let _ = stop.send(());
    server
        .await
        .expect("the server task")
        .expect("the server stops cleanly");
}

#[tokio::test]
async fn metrics_are_off_by_default_and_the_route_is_undocumented() {
    let dir = TempDir::new();
    let secret = Secret::generate().expect("a secret");
    let plain = TestClient::new(app(&dir, secret.clone()).into_router().expect("builds"));
    assert_eq!(plain.get("/metrics").send().await.status(), 404);

    let with_route = TestClient::new(
        app(&dir, secret)
            .metrics_route("/ops/metrics")
            .into_router()
            .expect("builds"),
    );
    let scraped = with_route.get("/ops/metrics").send().await;
    assert_eq!(scraped.status(), 200);
    assert!(
        scraped
            .text()
            .contains("# TYPE roundtrip_delivery_requests_in_flight gauge"),
        "{}",
        scraped.text()
    );
    let document = with_route.get("/openapi.json").send().await.json::<Value>();
    assert!(
        document["paths"].get("/ops/metrics").is_none(),
        "{document}"
    );
    assert!(document["paths"].get("/orders/").is_some());
}

#[tokio::test]
async fn a_bad_metrics_path_is_a_build_error_not_a_panic() {
    let dir = TempDir::new();
    let secret = Secret::generate().expect("a secret");
    let err = app(&dir, secret.clone())
        .metrics_route("metrics")
        .build()
        .expect_err("a path without a leading slash is refused");
    assert!(err.to_string().contains("`metrics`"), "{err}");

    async fn taken() -> Json<Value> {
        Json(json!({}))
    }
    let err = app(&dir, secret)
        .route("/metrics", get(taken))
        .metrics_route("/metrics")
        .build()
        .expect_err("a path already routed is refused");
    assert!(err.to_string().contains("/metrics"), "{err}");
}

#[tokio::test]
async fn metrics_can_be_counted_without_a_route_and_served_elsewhere() {
    let dir = TempDir::new();
    let receiver = MockReceiver::start().await;
    let metrics = DeliveryMetrics::new();
    // A second call replaces the first: attempts are counted once, into the last handle.
    let discarded = DeliveryMetrics::new();
    let built = app(&dir, receiver.secret())
        .metrics(&discarded)
        .metrics(&metrics)
        .build()
        .expect("builds");
    let workers = built.start_delivery().await.expect("workers start");
    let client = TestClient::new(built);
    assert_eq!(client.get("/metrics").send().await.status(), 404);
    let response = client
        .post("/orders/")
        .query(&[("callback_url", receiver.url("/cb").as_str())])
        .json(&json!({"id": "o9", "amount": 9}))
        .send()
        .await;
    assert_eq!(response.status(), 200, "{}", response.text());
    receiver
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("delivered");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (samples, _) = parse(&metrics.encode());
        if value(&samples, "roundtrip_delivery_attempts_total", &[]) >= 1.0 {
            assert_eq!(
                value(&samples, "roundtrip_messages_enqueued_total", &[]),
                1.0
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not counted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (old, _) = parse(&discarded.encode());
    assert_eq!(value(&old, "roundtrip_delivery_attempts_total", &[]), 0.0);
    assert_eq!(value(&old, "roundtrip_messages_enqueued_total", &[]), 0.0);
    if let Some(workers) = workers {
        workers.shutdown(Duration::from_secs(2)).await;
    }
}
