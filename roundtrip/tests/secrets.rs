//! Fields marked secret (`SecretString`) are never echoed: not in a 422's `input` for the
//! field itself, nor for the object that holds it, whether the body is JSON or a form; the
//! document marks them `format: password` and `writeOnly`.

use roundtrip::{App, Form, Json, SecretString, post};
use roundtrip_test::TestClient;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

const PASSWORD: &str = "correct-horse-battery";

#[derive(Deserialize, JsonSchema)]
struct Login {
    #[schemars(length(min = 3))]
    username: String,
    #[schemars(length(min = 20))]
    password: SecretString,
    remember: Option<bool>,
}

async fn json_login(Json(login): Json<Login>) -> Json<Value> {
    Json(json!({"user": login.username, "len": login.password.expose_secret().len()}))
}

async fn form_login(Form(login): Form<Login>) -> Json<Value> {
    Json(json!({"user": login.username, "remember": login.remember}))
}

fn client() -> TestClient {
    let router = App::new()
        .route("/json", post(json_login))
        .route("/form", post(form_login))
        .into_router()
        .expect("the app builds");
    TestClient::new(router)
}

#[track_caller]
fn never_echoed(body: &str) {
    assert!(!body.contains(PASSWORD), "the secret was echoed: {body}");
}

#[tokio::test]
async fn a_secret_is_not_echoed_by_json_422s() {
    let client = client();

    // The secret itself fails a constraint: its input is masked.
    let short = client
        .post("/json")
        .json(&json!({"username": "ada", "password": "short-but-secret"}))
        .send()
        .await;
    assert_eq!(short.status(), 422);
    let detail: Value = short.json();
    assert_eq!(detail["detail"][0]["loc"], json!(["body", "password"]));
    assert_eq!(detail["detail"][0]["type"], "string_too_short");
    assert_eq!(detail["detail"][0]["input"], "**********");
    assert!(!short.text().contains("short-but-secret"));

    // Another field is missing: the object is echoed, its secret masked.
    let missing = client
        .post("/json")
        .json(&json!({"password": PASSWORD}))
        .send()
        .await;
    assert_eq!(missing.status(), 422);
    never_echoed(&missing.text());
    let detail: Value = missing.json();
    assert_eq!(detail["detail"][0]["type"], "missing");
    assert_eq!(detail["detail"][0]["input"]["password"], "**********");

    // A field of the wrong type beside it.
    let wrong = client
        .post("/json")
        .json(&json!({"username": "ada", "password": PASSWORD, "remember": "perhaps"}))
        .send()
        .await;
    assert_eq!(wrong.status(), 422);
    never_echoed(&wrong.text());

    // A valid body still reaches the handler with the secret.
    let ok = client
        .post("/json")
        .json(&json!({"username": "ada", "password": PASSWORD}))
        .send()
        .await;
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert_eq!(ok.json::<Value>()["len"], PASSWORD.len());
}

#[tokio::test]
async fn a_secret_is_not_echoed_by_form_422s() {
    let client = client();
    let missing = client
        .post("/form")
        .form(&[("password", PASSWORD), ("remember", "perhaps")])
        .send()
        .await;
    assert_eq!(missing.status(), 422);
    never_echoed(&missing.text());
}

#[tokio::test]
async fn a_secret_is_documented_as_a_password() {
    let doc = App::new()
        .route("/json", post(json_login))
        .openapi()
        .expect("the document builds");
    let doc = serde_json::to_value(&doc).expect("the document is JSON");
    let password = &doc["components"]["schemas"]["Login"]["properties"]["password"];
    assert_eq!(password["format"], "password", "{password}");
    assert_eq!(password["writeOnly"], true, "{password}");
}
