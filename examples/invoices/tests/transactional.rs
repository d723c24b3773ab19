//! Transactional enqueue: the invoice row and its callback commit together or not at all,
//! on the embedded SQLite outbox and on PostgreSQL.

use std::time::Duration;

use example_invoices::transactional::{Store, app};
use roundtrip::delivery::outbox::MessageFilter;
use roundtrip_test::postgres::TestSchema;
use roundtrip_test::{MockReceiver, TempDir, TestClient};
use serde_json::json;

async fn exercise(store: Store) {
    let receiver = MockReceiver::start().await;
    let built = app(store.clone())
        .signing_secret(receiver.secret())
        .allow_loopback_deliveries()
        .build()
        .expect("the app builds");
    let outbox = store.outbox();
    let workers = built.start_delivery().await.expect("workers start");
    let client = TestClient::new(built);
    let url = receiver.url("/events").to_string();
    let invoice = json!({"id": "inv-1", "customer": "ACME", "total": 3.5});

    let created = client
        .post("/invoices/")
        .query(&[("callback_url", &url)])
        .json(&invoice)
        .send()
        .await;
    assert_eq!(created.status(), 200, "{}", created.text());

    // The same id again: the row's primary key refuses it, the transaction rolls back,
    // and the callback enqueued inside it is gone with it.
    let again = client
        .post("/invoices/")
        .query(&[("callback_url", &url)])
        .json(&invoice)
        .send()
        .await;
    assert_eq!(again.status(), 409, "{}", again.text());

    assert_eq!(store.invoice_count().await.expect("count"), 1);
    let page = outbox.list(&MessageFilter::new()).await.expect("list");
    assert_eq!(
        page.messages.len(),
        1,
        "one callback, for the committed invoice"
    );

    let delivered = receiver
        .wait_for(1, Duration::from_secs(10))
        .await
        .expect("the committed callback is delivered");
    assert_eq!(delivered[0].path, "/events/invoices/inv-1");
    assert!(delivered[0].verified);
    // Nothing else arrives: the rolled-back one was never stored.
    assert_eq!(receiver.unique_ids().len(), 1);
    if let Some(workers) = workers {
        workers.shutdown(Duration::from_secs(2)).await;
    }
}

#[tokio::test]
async fn rollback_sends_nothing_on_sqlite() {
    let dir = TempDir::new();
    let store = Store::sqlite(&dir.path().join("app.db"))
        .await
        .expect("the SQLite store opens");
    exercise(store).await;
}

#[tokio::test]
async fn rollback_sends_nothing_on_postgres() {
    let schema = TestSchema::new().await;
    let store = Store::postgres(&schema.url, &schema.name)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {} cannot be used: {e}", schema.url));
    exercise(store).await;
}
