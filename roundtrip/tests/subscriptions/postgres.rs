//! The same facade on PostgreSQL: endpoints in the outbox's schema (`?schema=`).

use super::*;
use roundtrip_test::postgres::TestSchema;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_fans_out_and_rotation_signs_twice_on_postgres() {
    let schema = TestSchema::new().await;
    let rig = Rig::on(&schema.database_url(), subscriptions(), 3).await;
    let a = MockReceiver::start().await;
    let b = MockReceiver::start().await;
    let c = MockReceiver::start().await;
    rig.subscribe(&a, &["new-subscription"]).await;
    let b_id = rig.subscribe(&b, &[]).await;
    rig.subscribe(&c, &["subscription-cancelled"]).await;
    let duplicate = rig
        .client
        .post("/admin/endpoints")
        .json(&json!({"url": a.url("/hooks").as_str(), "event_types": ["new-subscription"]}))
        .send()
        .await;
    assert_eq!(duplicate.status(), 409, "{}", duplicate.text());

    let ids = rig
        .publisher
        .publish(&new_subscription(), &rick())
        .await
        .expect("published");
    assert_eq!(ids.len(), 2);
    for receiver in [&a, &b] {
        let got = receiver
            .wait_for(1, Duration::from_secs(10))
            .await
            .expect("delivered");
        assert!(got[0].verified, "{:?}", got[0].verify_error);
    }
    assert_eq!(c.count(), 0);

    let old = b.secret();
    let rotated: Value = rig
        .client
        .post(&format!("/admin/endpoints/{b_id}/rotate-secret"))
        .json(&json!({}))
        .send()
        .await
        .json();
    let new = Secret::parse(rotated["secret"].as_str().expect("secret")).expect("whsec");
    b.clear();
    b.set_secrets(vec![new.clone()]);
    rig.publisher
        .publish(&new_subscription(), &rick())
        .await
        .expect("published");
    let got = b
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("delivered");
    assert_eq!(signatures(&got[0]), 2);
    assert!(got[0].verified);
    Verifier::new(old)
        .verify(&got[0].headers, &got[0].body)
        .expect("the old secret still verifies");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_disables_and_enable_restores_on_postgres() {
    let schema = TestSchema::new().await;
    let rig = Rig::on(&schema.database_url(), subscriptions(), 3).await;
    let receiver = MockReceiver::start().await;
    let id = rig.subscribe(&receiver, &[]).await;
    receiver.set_behaviour(Behaviour::Status(410));
    rig.publisher
        .publish(&new_subscription(), &rick())
        .await
        .expect("published");
    let disabled = rig
        .wait_for_endpoint(&id, "disabled", |e| e["enabled"] == false)
        .await;
    assert_eq!(disabled["disabled_by"], "gone");
    let store: Arc<dyn EndpointStore> = rig.subscriptions.endpoints().await.expect("store");
    assert!(
        store
            .matching("new-subscription")
            .await
            .expect("matching")
            .is_empty()
    );
    let enabled: Value = rig
        .client
        .post(&format!("/admin/endpoints/{id}/enable"))
        .send()
        .await
        .json();
    assert_eq!(enabled["enabled"], true);
    rig.stop().await;
}
