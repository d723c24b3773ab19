//! The invoices app's deliveries API and console: off by default, on behind the operators'
//! key (`INVOICES_CONSOLE_KEY` for `serve`), which the console asks for.

use roundtrip_test::{TempDir, TestClient};
use serde_json::Value;

const KEY: &str = "operators-7d21";

#[tokio::test]
async fn the_console_is_off_by_default_and_on_behind_the_key() {
    let dir = TempDir::new();
    let plain = example_invoices::app().database_url(dir.sqlite_url("plain.db"));
    let client = TestClient::new(plain.build().expect("builds"));
    for path in ["/admin/console", "/admin/deliveries/messages"] {
        let response = client.get(path).header("X-Console-Key", KEY).send().await;
        assert_eq!(response.status(), 404, "{path} is off by default");
    }

    let on = example_invoices::with_console(
        example_invoices::app().database_url(dir.sqlite_url("on.db")),
        KEY.to_owned(),
    );
    let client = TestClient::new(on.build().expect("builds"));
    let locked = client.get("/admin/console").send().await;
    assert_eq!(locked.status(), 401);
    assert!(
        locked.text().contains(r#""name":"X-Console-Key""#),
        "asks for the key"
    );
    let wrong = client
        .get("/admin/deliveries/messages")
        .header("X-Console-Key", "guess")
        .send()
        .await;
    assert_eq!(wrong.status(), 403);
    let page = client
        .get("/admin/console")
        .header("X-Console-Key", KEY)
        .send()
        .await;
    assert_eq!(page.status(), 200);
    let listed = client
        .get("/admin/deliveries/messages")
        .header("X-Console-Key", KEY)
        .send()
        .await;
    assert_eq!(listed.status(), 200, "{}", listed.text());
    assert_eq!(listed.json::<Value>()["data"], Value::Array(Vec::new()));
    let events = client
        .get("/admin/deliveries/events")
        .header("X-Console-Key", KEY)
        .send()
        .await;
    let events: Value = events.json();
    assert_eq!(events["data"][0]["name"], "invoice_notification");
    assert_eq!(events["data"][0]["operation"], "POST /invoices/");
}
