//! The management API: its guard, endpoints created, listed, updated and deleted, URLs
//! moved with their queued messages, webhooks in the application's own transaction, and
//! registrations refused with FastAPI's 422s or a 409.

use super::*;

#[tokio::test]
async fn the_management_api_answers_only_the_guard() {
    let rig = Rig::sqlite(subscriptions(), 3).await;
    let anonymous = TestClient::new(
        app(&TempDir::new().sqlite_url("x.db"), &subscriptions(), 3)
            .build()
            .expect("builds"),
    );
    let calls = [
        ("POST", "/admin/endpoints"),
        ("GET", "/admin/endpoints"),
        ("GET", "/admin/endpoints/ep_x"),
        ("PATCH", "/admin/endpoints/ep_x"),
        ("DELETE", "/admin/endpoints/ep_x"),
        ("POST", "/admin/endpoints/ep_x/rotate-secret"),
        ("POST", "/admin/endpoints/ep_x/enable"),
        ("POST", "/admin/endpoints/ep_x/disable"),
    ];
    for (method, path) in calls {
        let method: http::Method = method.parse().expect("method");
        let missing = anonymous
            .request(method.clone(), path)
            .json(&json!({}))
            .send()
            .await;
        assert_eq!(missing.status(), 401, "{method} {path}: {}", missing.text());
        assert_eq!(missing.header("www-authenticate"), Some("APIKey"));
        assert_eq!(
            missing.json::<Value>(),
            json!({"detail": "Not authenticated"})
        );
        let wrong = anonymous
            .request(method.clone(), path)
            .header("X-Admin-Key", "guess")
            .json(&json!({}))
            .send()
            .await;
        assert_eq!(wrong.status(), 403, "{method} {path}: {}", wrong.text());
    }
    // With the key, the same calls reach the handlers.
    let listed = rig.client.get("/admin/endpoints").send().await;
    assert_eq!(listed.status(), 200, "{}", listed.text());
    assert_eq!(listed.json::<Value>(), json!({"data": [], "next": null}));
    rig.stop().await;
}

#[tokio::test]
async fn endpoints_are_created_listed_read_updated_and_deleted() {
    let rig = Rig::sqlite(subscriptions(), 3).await;
    let created = rig
        .register(json!({
            "url": "https://hooks.partner.example/roundtrip",
            "description": "billing",
            "event_types": ["new-subscription"],
            "metadata": {"team": "billing", "tier": 2},
        }))
        .await;
    let secret = created["secret"]
        .as_str()
        .expect("the secret, once")
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let endpoint = &created["endpoint"];
    let id = id_of(endpoint);
    assert!(id.starts_with("ep_"), "{id}");
    assert_eq!(endpoint["url"], "https://hooks.partner.example/roundtrip");
    assert_eq!(endpoint["enabled"], true);
    assert_eq!(endpoint["event_types"], json!(["new-subscription"]));
    assert_eq!(endpoint["metadata"], json!({"team": "billing", "tier": 2}));
    assert_eq!(endpoint["disabled_by"], Value::Null);

    let listed = rig.client.get("/admin/endpoints").send().await;
    assert_eq!(listed.status(), 200);
    assert!(
        !listed.text().contains(&secret),
        "listings never carry secrets"
    );
    assert!(!listed.text().contains("whsec_"));
    let page: Value = listed.json();
    assert_eq!(page["data"].as_array().map(Vec::len), Some(1));
    let read = rig.endpoint(&id).await;
    assert_eq!(&read, endpoint);
    assert!(read.get("secret").is_none());

    let filtered = rig
        .client
        .get("/admin/endpoints")
        .query(&[
            ("event_type", "subscription-cancelled"),
            ("enabled", "true"),
        ])
        .send()
        .await
        .json::<Value>();
    assert_eq!(filtered["data"], json!([]));

    let patched = rig
        .client
        .patch(&format!("/admin/endpoints/{id}"))
        .json(&json!({"description": "billing v2", "event_types": []}))
        .send()
        .await;
    assert_eq!(patched.status(), 200, "{}", patched.text());
    let patched: Value = patched.json();
    assert_eq!(patched["description"], "billing v2");
    assert_eq!(patched["event_types"], json!([]), "now every event");
    assert_eq!(patched["url"], endpoint["url"], "left out, left as it was");

    let deleted = rig
        .client
        .delete(&format!("/admin/endpoints/{id}"))
        .send()
        .await;
    assert_eq!(deleted.status(), 204, "{}", deleted.text());
    for (method, path) in [
        (http::Method::GET, format!("/admin/endpoints/{id}")),
        (http::Method::DELETE, format!("/admin/endpoints/{id}")),
        (http::Method::POST, format!("/admin/endpoints/{id}/enable")),
    ] {
        let gone = rig.client.request(method, &path).send().await;
        assert_eq!(gone.status(), 404, "{path}");
        let detail = gone.json::<Value>()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(detail.contains(&id), "{detail}");
    }
    rig.stop().await;
}

#[tokio::test]
async fn a_new_url_also_applies_to_the_messages_already_queued() {
    // Plenty of tries, 30 ms apart: the message keeps retrying at the old receiver until
    // the endpoint moves.
    let rig = Rig::sqlite(subscriptions(), 200).await;
    let old = MockReceiver::start().await;
    old.set_behaviour(Behaviour::Status(503));
    let created = rig
        .register(json!({"url": old.url("/hooks").as_str(), "event_types": ["new-subscription"]}))
        .await;
    let id = id_of(&created["endpoint"]);
    let secret = Secret::parse(created["secret"].as_str().expect("a secret")).expect("whsec");
    old.set_secrets(vec![secret.clone()]);
    let new = MockReceiver::start().await;
    new.set_secrets(vec![secret]);
    let ids = rig
        .publisher
        .publish(&new_subscription(), &rick())
        .await
        .expect("published");
    assert_eq!(ids.len(), 1);
    old.wait_for(2, Duration::from_secs(10))
        .await
        .expect("the old URL is tried and retried");

    let moved = rig
        .client
        .patch(&format!("/admin/endpoints/{id}"))
        .json(&json!({"url": new.url("/moved").as_str()}))
        .send()
        .await;
    assert_eq!(moved.status(), 200, "{}", moved.text());
    let delivered = new
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("the queued message reaches the new URL");
    assert!(delivered[0].verified, "signed with the endpoint's secret");
    assert_eq!(delivered[0].path, "/moved");
    assert_eq!(
        delivered[0].header("webhook-id"),
        Some(ids[0].as_str()),
        "the same message, not a new one"
    );
    let stored = rig.outbox.get(&ids[0]).await.expect("read").expect("kept");
    assert_eq!(
        stored.meta.url,
        new.url("/moved"),
        "its record says where it went"
    );
    rig.stop().await;
}

/// The business table beside the outbox, and a transaction that writes a row and the given
/// messages, then commits or rolls back.
async fn order_with_messages(
    db: &std::path::Path,
    order: &str,
    messages: Vec<roundtrip::delivery::message::NewMessage>,
    commit: bool,
) {
    use sqlx::Connection;
    let outbox = SqliteOutbox::open(roundtrip::delivery::sqlite::SqliteOptions::new(db))
        .await
        .expect("a second instance on the app's file");
    let mut conn = sqlx::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .busy_timeout(Duration::from_secs(5)),
    )
    .await
    .expect("the app's own connection");
    sqlx::query("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY)")
        .execute(&mut conn)
        .await
        .expect("table");
    let mut tx = conn.begin().await.expect("begin");
    sqlx::query("INSERT INTO orders (id) VALUES (?)")
        .bind(order)
        .execute(&mut *tx)
        .await
        .expect("the business row");
    outbox
        .enqueue_in(&mut tx, messages)
        .await
        .expect("enqueued in the transaction");
    if commit {
        tx.commit().await.expect("commit");
    } else {
        tx.rollback().await.expect("rollback");
    }
}

#[tokio::test]
async fn webhooks_enqueue_inside_the_applications_own_transaction() {
    let dir = TempDir::new();
    let db = dir.path().join("app.db");
    let rig = Rig::on(&dir.sqlite_url("app.db"), subscriptions(), 3).await;
    let subscribed = MockReceiver::start().await;
    rig.subscribe(&subscribed, &["new-subscription"]).await;
    let direct = MockReceiver::start().await;

    // Rolled back: the fan-out and the message to a given URL vanish with the row.
    let fan_out = rig
        .publisher
        .messages(&new_subscription(), &rick(), SendOptions::new())
        .await
        .expect("built");
    assert_eq!(fan_out.len(), 1, "one per subscribed endpoint");
    let to_url = rig
        .publisher
        .message_to(
            &new_subscription(),
            direct.url("/direct").as_str(),
            &rick(),
            SendOptions::new(),
        )
        .await
        .expect("built");
    let mut dropped: Vec<String> = fan_out.iter().map(|m| m.id().to_string()).collect();
    dropped.push(to_url.id().to_string());
    let mut both = fan_out;
    both.push(to_url);
    order_with_messages(&db, "order-1", both, false).await;

    // Committed: both are delivered, signed.
    let mut fan_out = rig
        .publisher
        .messages(&new_subscription(), &rick(), SendOptions::new())
        .await
        .expect("built");
    let to_url = rig
        .publisher
        .message_to(
            &new_subscription(),
            direct.url("/direct").as_str(),
            &rick(),
            SendOptions::new(),
        )
        .await
        .expect("built");
    let kept = [fan_out[0].id().to_string(), to_url.id().to_string()];
    fan_out.push(to_url);
    order_with_messages(&db, "order-2", fan_out, true).await;

    let at_endpoint = subscribed
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("the committed fan-out is delivered");
    assert!(at_endpoint[0].verified);
    assert_eq!(at_endpoint[0].header("webhook-id"), Some(kept[0].as_str()));
    let at_url = direct
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("the committed message to a URL is delivered");
    assert_eq!(at_url[0].header("webhook-id"), Some(kept[1].as_str()));
    let stored: Vec<String> = rig
        .outbox
        .list(&MessageFilter::new())
        .await
        .expect("listed")
        .messages
        .iter()
        .map(|m| m.id.to_string())
        .collect();
    assert_eq!(stored.len(), 2, "{stored:?}");
    for id in &dropped {
        assert!(!stored.contains(id), "rolled back, never stored: {id}");
    }
    assert_eq!(
        subscribed.count() + direct.count(),
        2,
        "nothing else was sent"
    );
    rig.stop().await;
}

#[tokio::test]
async fn bad_registrations_are_refused_with_fastapi_422s() {
    let rig = Rig::sqlite(subscriptions(), 3).await;
    let refuse = |body: Value| {
        let client = rig.client.clone();
        async move {
            let response = client.post("/admin/endpoints").json(&body).send().await;
            assert_eq!(response.status(), 422, "{body}: {}", response.text());
            detail(&response)
        }
    };

    let malformed = refuse(json!({"url": "not a url"})).await;
    assert_eq!(malformed[0]["type"], "url_parsing");
    assert_eq!(malformed[0]["loc"], json!(["body", "url"]));

    let scheme = refuse(json!({"url": "ftp://hooks.partner.example/x"})).await;
    assert_eq!(scheme[0]["type"], "url_scheme");
    assert_eq!(scheme[0]["msg"], "URL scheme should be 'http' or 'https'");

    for blocked in [
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/admin",
        "https://intranet.partner.example/hooks",
        "https://sneaky.partner.example/hooks",
        "http://[::ffff:192.168.0.1]/",
    ] {
        let problems = refuse(json!({"url": blocked})).await;
        assert_eq!(problems.len(), 1, "{blocked}: {problems:?}");
        assert_eq!(problems[0]["type"], "value_error");
        assert_eq!(problems[0]["loc"], json!(["body", "url"]));
        assert_eq!(
            problems[0]["input"],
            blocked
                .parse::<url::Url>()
                .map(|u| u.to_string())
                .unwrap_or_default()
        );
        let msg = problems[0]["msg"].as_str().unwrap_or_default();
        assert!(msg.starts_with("Value error, the URL is refused"), "{msg}");
    }

    // Every problem of one request at once: a blocked host and two unknown events.
    let several = refuse(json!({
        "url": "https://intranet.partner.example/hooks",
        "event_types": ["new-subscription", "invoice.paid", "nope"],
    }))
    .await;
    let locs: Vec<&Value> = several.iter().map(|p| &p["loc"]).collect();
    assert_eq!(
        locs,
        [
            &json!(["body", "url"]),
            &json!(["body", "event_types", 1]),
            &json!(["body", "event_types", 2])
        ]
    );
    let msg = several[1]["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains("`invoice.paid` is not an event this API sends")
            && msg.contains("new-subscription, subscription-cancelled"),
        "{msg}"
    );

    // The schema's own limits are enforced too.
    let empty_event =
        refuse(json!({"url": "https://hooks.partner.example/", "event_types": [""]})).await;
    assert_eq!(empty_event[0]["loc"], json!(["body", "event_types", 0]));

    // A bad secret is refused without being echoed: its documented pattern first, then
    // the key's length.
    let secret =
        refuse(json!({"url": "https://hooks.partner.example/", "secret": "whsec_c2hvcnQ="})).await;
    assert_eq!(secret[0]["loc"], json!(["body", "secret"]));
    assert_eq!(secret[0]["type"], "string_pattern_mismatch");
    assert_eq!(secret[0]["input"], "**********");
    let odd = format!("whsec_{}", "A".repeat(33));
    let secret = refuse(json!({"url": "https://hooks.partner.example/", "secret": odd})).await;
    assert_eq!(secret[0]["loc"], json!(["body", "secret"]));
    assert_eq!(secret[0]["input"], "**********");
    assert!(!format!("{secret:?}").contains(&odd), "{secret:?}");

    // A body refused as a whole (no `url`) echoes itself as FastAPI does, but never the
    // secret it holds.
    let given = Secret::generate().expect("secret").to_string();
    let whole = refuse(json!({"description": "no url", "secret": given})).await;
    assert_eq!(whole[0]["type"], "missing");
    assert_eq!(whole[0]["input"]["description"], "no url");
    assert_eq!(whole[0]["input"]["secret"], "**********");
    assert!(!format!("{whole:?}").contains(&given), "{whole:?}");
    let wrong_type = refuse(json!({"url": 7, "secret": given})).await;
    assert!(
        !format!("{wrong_type:?}").contains(&given),
        "{wrong_type:?}"
    );

    // Nothing was stored.
    let listed: Value = rig.client.get("/admin/endpoints").send().await.json();
    assert_eq!(listed["data"], json!([]));

    // The same checks guard updates, and the Rust API.
    let ok = rig
        .register(json!({"url": "https://hooks.partner.example/ok"}))
        .await;
    let id = id_of(&ok["endpoint"]);
    let moved = rig
        .client
        .patch(&format!("/admin/endpoints/{id}"))
        .json(&json!({"url": "http://10.1.2.3/"}))
        .send()
        .await;
    assert_eq!(moved.status(), 422, "{}", moved.text());
    let err = rig
        .subscriptions
        .create(
            NewEndpoint::new("https://hooks.partner.example/other".parse().expect("url"))
                .event_type("invoice.paid"),
        )
        .await
        .expect_err("unknown event");
    assert!(err.is_invalid(), "{err}");
    assert_eq!(err.errors()[0].loc.len(), 2, "event_types, index");
    rig.stop().await;
}

#[tokio::test]
async fn duplicate_endpoints_are_a_409() {
    let rig = Rig::sqlite(subscriptions(), 3).await;
    let first = rig
        .register(json!({"url": "https://hooks.partner.example/a", "event_types": ["new-subscription", "subscription-cancelled"]}))
        .await;
    let again = rig
        .client
        .post("/admin/endpoints")
        .json(&json!({"url": "https://HOOKS.partner.example/a", "event_types": ["subscription-cancelled", "new-subscription"]}))
        .send()
        .await;
    assert_eq!(again.status(), 409, "{}", again.text());
    let detail = again.json::<Value>()["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(detail.contains(&id_of(&first["endpoint"])), "{detail}");
    let other = rig
        .client
        .post("/admin/endpoints")
        .json(
            &json!({"url": "https://hooks.partner.example/a", "event_types": ["new-subscription"]}),
        )
        .send()
        .await;
    assert_eq!(
        other.status(),
        201,
        "other event types are another endpoint"
    );
    rig.stop().await;
}
