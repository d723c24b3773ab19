//! Publishing: fan-out to every subscribed receiver with its own secret, payload checks,
//! one outbox write per fan-out, rotation, auto-disable and re-enable, and the document.

use super::*;

#[tokio::test]
async fn publish_fans_out_to_every_subscribed_receiver_with_its_own_secret() {
    let rig = Rig::sqlite(subscriptions(), 3).await;
    let everything = MockReceiver::start().await;
    let subscriber = MockReceiver::start().await;
    let canceller = MockReceiver::start().await;
    let all_id = rig.subscribe(&everything, &[]).await;
    let sub_id = rig.subscribe(&subscriber, &["new-subscription"]).await;
    let cancel_id = rig.subscribe(&canceller, &["subscription-cancelled"]).await;
    // A receiver that registers with a secret of its own keeps it.
    let own = MockReceiver::start().await;
    let created = rig
        .register(json!({
            "url": own.url("/own").as_str(),
            "event_types": ["new-subscription"],
            "secret": own.secret().to_string(),
        }))
        .await;
    assert_eq!(created["secret"], own.secret().to_string());
    let own_id = id_of(&created["endpoint"]);

    let ids = rig
        .publisher
        .publish(&new_subscription(), &rick())
        .await
        .expect("published");
    assert_eq!(ids.len(), 3, "one message per subscribed endpoint");
    for receiver in [&everything, &subscriber, &own] {
        let deliveries = receiver
            .wait_for(1, Duration::from_secs(10))
            .await
            .expect("delivered");
        assert!(deliveries[0].verified, "{:?}", deliveries[0].verify_error);
        assert_eq!(
            deliveries[0].json().expect("json"),
            json!({"username": "rick"})
        );
        assert_eq!(signatures(&deliveries[0]), 1);
    }
    let webhook_ids: std::collections::BTreeSet<String> = [&everything, &subscriber, &own]
        .iter()
        .flat_map(|r| r.unique_ids())
        .collect();
    assert_eq!(webhook_ids.len(), 3, "each endpoint gets its own message");
    assert_eq!(canceller.count(), 0, "not subscribed to new-subscription");

    // The outbox knows which endpoint each message was for.
    for (endpoint, expected) in [(&all_id, 1), (&sub_id, 1), (&own_id, 1), (&cancel_id, 0)] {
        let page = rig
            .outbox
            .list(&MessageFilter::new().endpoint_id(endpoint.as_str()))
            .await
            .expect("list");
        assert_eq!(page.messages.len(), expected, "{endpoint}");
    }

    let ids = rig
        .publisher
        .publish(
            &cancelled(),
            &Cancelled {
                username: "rick".into(),
                reason: "moved".into(),
            },
        )
        .await
        .expect("published");
    assert_eq!(ids.len(), 2);
    everything
        .wait_for(2, Duration::from_secs(10))
        .await
        .expect("every event");
    let got = canceller
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("its event");
    assert!(got[0].verified);
    assert_eq!(
        subscriber.count(),
        1,
        "not subscribed to subscription-cancelled"
    );
    rig.stop().await;
}

#[tokio::test]
async fn publishing_checks_the_payload_and_answers_no_ids_when_nobody_listens() {
    let rig = Rig::sqlite(subscriptions(), 3).await;
    let ids = rig
        .publisher
        .publish(&new_subscription(), &rick())
        .await
        .expect("nobody subscribed is fine");
    assert!(ids.is_empty());
    let bad = rig
        .publisher
        .publish(
            &cancelled(),
            &Cancelled {
                username: "rick".into(),
                reason: "x".repeat(21),
            },
        )
        .await
        .expect_err("breaks its schema");
    assert!(matches!(bad, SendError::InvalidPayload { .. }), "{bad}");
    let undeclared: Webhook<Subscribed> = Webhook::post("never-declared");
    let err = rig
        .publisher
        .publish(&undeclared, &rick())
        .await
        .expect_err("undeclared");
    assert!(matches!(err, SendError::NotAttached { .. }), "{err}");

    // An app without subscriptions says what is missing.
    let dir = TempDir::new();
    let plain = App::new()
        .webhook(new_subscription())
        .database_url(dir.sqlite_url("plain.db"))
        .build()
        .expect("builds");
    let err = plain
        .publisher()
        .publish(&new_subscription(), &rick())
        .await
        .expect_err("no subscriptions");
    assert!(err.to_string().contains("App::subscriptions"), "{err}");
    rig.stop().await;
}

#[tokio::test]
async fn a_fan_out_is_stored_in_one_outbox_write() {
    let dir = TempDir::new();
    let path = dir.path().join("given.db");
    let outbox = SqliteOutbox::open_path(&path).await.expect("outbox");
    let store = SqliteEndpointStore::open_path(&path)
        .await
        .expect("endpoint store");
    let subscriptions = subscriptions().store(store);
    let built = App::new()
        .webhook(new_subscription())
        .outbox(Arc::new(outbox.clone()))
        .allow_loopback_deliveries()
        .subscriptions(subscriptions.clone())
        .build()
        .expect("builds");
    let receivers = [
        MockReceiver::start().await,
        MockReceiver::start().await,
        MockReceiver::start().await,
    ];
    for (n, receiver) in receivers.iter().enumerate() {
        subscriptions
            .create(NewEndpoint::new(receiver.url(&format!("/r{n}"))))
            .await
            .expect("registered from Rust");
    }
    let before = outbox.stats();
    let ids = built
        .publisher()
        .publish(&new_subscription(), &rick())
        .await
        .expect("published");
    let after = outbox.stats();
    assert_eq!(ids.len(), 3);
    assert_eq!(
        after.jobs - before.jobs,
        1,
        "one enqueue for the whole fan-out"
    );
    assert_eq!(after.transactions - before.transactions, 1);
    let page = outbox.list(&MessageFilter::new()).await.expect("list");
    assert_eq!(page.messages.len(), 3);
    assert!(page.messages.iter().all(|m| m.endpoint_id.is_some()));
}

#[tokio::test]
async fn during_a_rotation_both_signatures_are_sent() {
    let rig = Rig::sqlite(subscriptions(), 3).await;
    let receiver = MockReceiver::start().await;
    let created = rig
        .register(json!({"url": receiver.url("/hooks").as_str()}))
        .await;
    let id = id_of(&created["endpoint"]);
    let old = Secret::parse(created["secret"].as_str().expect("secret")).expect("whsec");

    let rotated = rig
        .client
        .post(&format!("/admin/endpoints/{id}/rotate-secret"))
        .json(&json!({}))
        .send()
        .await;
    assert_eq!(rotated.status(), 200, "{}", rotated.text());
    let rotated: Value = rotated.json();
    let new = Secret::parse(rotated["secret"].as_str().expect("new secret")).expect("whsec");
    assert_ne!(new.to_string(), old.to_string());
    assert!(rotated["previous_expires_at"].is_string());
    assert_eq!(
        rotated["endpoint"]["rotation_ends_at"],
        rotated["previous_expires_at"]
    );
    let read = rig.endpoint(&id).await;
    assert!(
        !read.to_string().contains("whsec_"),
        "reads never carry secrets"
    );

    // A receiver that still knows only the old secret accepts the message...
    receiver.set_secrets(vec![old.clone()]);
    rig.publisher
        .publish(&new_subscription(), &rick())
        .await
        .expect("published");
    let delivery = receiver
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("delivered")[0]
        .clone();
    assert_eq!(
        signatures(&delivery),
        2,
        "both secrets sign during the grace"
    );
    assert!(delivery.verified, "{:?}", delivery.verify_error);
    // ...and so does one that already knows only the new secret.
    for secret in [&old, &new] {
        Verifier::new(secret.clone())
            .verify(&delivery.headers, &delivery.body)
            .expect("each secret verifies the same delivery");
    }

    // Ending the grace at once leaves only the new secret.
    let now = rig
        .client
        .post(&format!("/admin/endpoints/{id}/rotate-secret"))
        .json(&json!({"grace_seconds": 0}))
        .send()
        .await;
    assert_eq!(now.status(), 200, "{}", now.text());
    let newest =
        Secret::parse(now.json::<Value>()["secret"].as_str().expect("secret")).expect("whsec");
    receiver.clear();
    receiver.set_secrets(vec![newest.clone()]);
    rig.publisher
        .publish(&new_subscription(), &rick())
        .await
        .expect("published");
    let delivery = receiver
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("delivered")[0]
        .clone();
    assert!(delivery.verified);
    assert_eq!(
        signatures(&delivery),
        2,
        "the first secret's 24-hour grace still runs beside the newest"
    );
    assert!(
        Verifier::new(new.clone())
            .verify(&delivery.headers, &delivery.body)
            .is_err(),
        "the second secret stopped at once"
    );

    // A secret given for the rotation is used, and a bad one refused without echo.
    let bad = rig
        .client
        .post(&format!("/admin/endpoints/{id}/rotate-secret"))
        .json(&json!({"secret": "not base64 !"}))
        .send()
        .await;
    assert_eq!(bad.status(), 422, "{}", bad.text());
    assert!(!bad.text().contains("not base64 !"));
    let mine = Secret::generate().expect("secret");
    let given = rig
        .client
        .post(&format!("/admin/endpoints/{id}/rotate-secret"))
        .json(&json!({"secret": mine.to_string()}))
        .send()
        .await;
    assert_eq!(given.json::<Value>()["secret"], mine.to_string());
    rig.stop().await;
}

#[tokio::test]
async fn a_410_disables_the_endpoint_until_one_call_enables_it() {
    let rig = Rig::sqlite(subscriptions(), 5).await;
    let receiver = MockReceiver::start().await;
    let id = rig.subscribe(&receiver, &["new-subscription"]).await;
    receiver.set_behaviour(Behaviour::Status(410));
    rig.publisher
        .publish(&new_subscription(), &rick())
        .await
        .expect("published");
    let disabled = rig
        .wait_for_endpoint(&id, "disabled", |e| e["enabled"] == false)
        .await;
    assert_eq!(disabled["disabled_by"], "gone");
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("410")
    );
    assert!(disabled["disabled_at"].is_string());
    assert_eq!(receiver.count(), 1, "410 is not retried");
    let listed: Value = rig
        .client
        .get("/admin/endpoints")
        .query(&[("enabled", "false")])
        .send()
        .await
        .json();
    assert_eq!(listed["data"][0]["id"], id.as_str());

    // Disabled endpoints get nothing.
    let ids = rig
        .publisher
        .publish(&new_subscription(), &rick())
        .await
        .expect("published");
    assert!(ids.is_empty());

    receiver.set_behaviour(Behaviour::Succeed);
    let enabled = rig
        .client
        .post(&format!("/admin/endpoints/{id}/enable"))
        .send()
        .await;
    assert_eq!(enabled.status(), 200, "{}", enabled.text());
    let enabled: Value = enabled.json();
    assert_eq!(enabled["enabled"], true);
    assert_eq!(enabled["disabled_by"], Value::Null);
    let ids = rig
        .publisher
        .publish(&new_subscription(), &rick())
        .await
        .expect("published");
    assert_eq!(ids.len(), 1);
    let deliveries = receiver
        .wait_for(2, Duration::from_secs(10))
        .await
        .expect("delivered again");
    assert!(deliveries[1].verified);
    rig.wait_for_endpoint(&id, "healthy", |e| e["last_success_at"].is_string())
        .await;

    // Disabling by hand works the same way.
    let off = rig
        .client
        .post(&format!("/admin/endpoints/{id}/disable"))
        .send()
        .await
        .json::<Value>();
    assert_eq!(off["disabled_by"], "manual");
    rig.stop().await;
}

#[tokio::test]
async fn an_endpoint_that_fails_for_the_whole_window_is_disabled() {
    let rig = Rig::sqlite(subscriptions().failure_window(ms(300)), 60).await;
    let receiver = MockReceiver::start().await;
    receiver.set_behaviour(Behaviour::Status(503));
    let id = rig.subscribe(&receiver, &[]).await;
    rig.publisher
        .publish(&new_subscription(), &rick())
        .await
        .expect("published");
    let failing = rig
        .wait_for_endpoint(&id, "failing", |e| e["failing_since"].is_string())
        .await;
    assert_eq!(
        failing["enabled"], true,
        "failures within the window only count"
    );
    let disabled = rig
        .wait_for_endpoint(&id, "disabled", |e| e["enabled"] == false)
        .await;
    assert_eq!(disabled["disabled_by"], "failing");
    assert!(receiver.count() >= 2, "it was retried before");

    // One call from Rust enables it again; the queued message then arrives.
    receiver.set_behaviour(Behaviour::Succeed);
    let enabled = rig.subscriptions.enable(&id).await.expect("enabled");
    assert!(enabled.is_enabled() && enabled.failing_since.is_none());
    let healthy = rig
        .wait_for_endpoint(&id, "delivered to", |e| e["last_success_at"].is_string())
        .await;
    assert_eq!(healthy["failing_since"], Value::Null);
    let delivered = receiver
        .wait_until("a verified delivery", Duration::from_secs(10), |d| {
            d.iter().any(|d| d.verified && d.answered == Some(200))
        })
        .await
        .expect("delivered");
    assert_eq!(
        delivered
            .iter()
            .filter_map(Delivery::webhook_id)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        1,
        "the same message, retried"
    );
    rig.stop().await;
}

#[tokio::test]
async fn the_management_api_is_documented_with_the_guard_as_its_security() {
    let dir = TempDir::new();
    let router = app(&dir.sqlite_url("doc.db"), &subscriptions(), 3)
        .into_router()
        .expect("builds");
    let doc: Value = TestClient::new(router)
        .get("/openapi.json")
        .send()
        .await
        .json();
    roundtrip_test::oas::assert_valid_openapi_31(&doc);
    let paths = &doc["paths"];
    let operations = [
        (
            "/admin/endpoints",
            "post",
            "create_endpoint_admin_endpoints_post",
        ),
        (
            "/admin/endpoints",
            "get",
            "list_endpoints_admin_endpoints_get",
        ),
        (
            "/admin/endpoints/{endpoint_id}",
            "get",
            "get_endpoint_admin_endpoints__endpoint_id__get",
        ),
        (
            "/admin/endpoints/{endpoint_id}",
            "patch",
            "update_endpoint_admin_endpoints__endpoint_id__patch",
        ),
        (
            "/admin/endpoints/{endpoint_id}",
            "delete",
            "delete_endpoint_admin_endpoints__endpoint_id__delete",
        ),
        (
            "/admin/endpoints/{endpoint_id}/rotate-secret",
            "post",
            "rotate_endpoint_secret_admin_endpoints__endpoint_id__rotate_secret_post",
        ),
        (
            "/admin/endpoints/{endpoint_id}/enable",
            "post",
            "enable_endpoint_admin_endpoints__endpoint_id__enable_post",
        ),
        (
            "/admin/endpoints/{endpoint_id}/disable",
            "post",
            "disable_endpoint_admin_endpoints__endpoint_id__disable_post",
        ),
    ];
    for (path, method, operation_id) in operations {
        let op = &paths[path][method];
        assert_eq!(op["operationId"], operation_id, "{method} {path}");
        assert_eq!(
            op["security"],
            json!([{"APIKeyHeader": []}]),
            "{method} {path}"
        );
        assert_eq!(op["tags"], json!(["webhook endpoints"]));
        assert!(op["responses"]["422"].is_object(), "{method} {path}");
    }
    let create = &paths["/admin/endpoints"]["post"];
    assert!(create["responses"]["201"].is_object());
    assert!(create["responses"]["409"].is_object());
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/WebhookEndpointIn"
    );
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["WebhookEndpointIn"]["required"], json!(["url"]));
    assert_eq!(
        schemas["WebhookEndpointIn"]["properties"]["url"]["format"],
        "uri"
    );
    assert!(
        schemas["WebhookEndpoint"]["properties"]
            .get("secret")
            .is_none()
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["APIKeyHeader"],
        json!({"type": "apiKey", "in": "header", "name": "X-Admin-Key"})
    );
    // The declared webhooks are documented as before.
    assert!(doc["webhooks"]["new-subscription"]["post"].is_object());
}
