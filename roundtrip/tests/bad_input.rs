//! Bad input gets a clear 4xx in FastAPI's shape, never a 500 or a panic, and the app
//! keeps serving.

use proptest::prelude::*;
use roundtrip::{App, Cookie, Form, Header, Json, Path, Query, get, post};
use roundtrip_test::TestClient;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize, JsonSchema)]
struct Address {
    city: String,
    zip: String,
}

#[derive(Deserialize, JsonSchema)]
struct User {
    username: String,
    age: i32,
    address: Address,
}

#[derive(Deserialize, JsonSchema)]
struct Filters {
    tag: Option<Vec<String>>,
    page: Option<i64>,
    verbose: Option<bool>,
}

#[derive(Deserialize, JsonSchema)]
struct Session {
    session_id: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
struct Agent {
    user_agent: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
struct Login {
    username: String,
    password: String,
}

async fn create_user(Json(user): Json<User>) -> Json<Value> {
    Json(
        json!({"username": user.username, "age": user.age, "city": user.address.city, "zip": user.address.zip}),
    )
}

async fn search(Query(f): Query<Filters>) -> Json<Value> {
    Json(json!({"tag": f.tag, "page": f.page, "verbose": f.verbose}))
}

async fn read_item(Path(id): Path<i64>) -> Json<Value> {
    Json(json!({"id": id}))
}

async fn me(Cookie(c): Cookie<Session>, Header(h): Header<Agent>) -> Json<Value> {
    Json(json!({"session_id": c.session_id, "user_agent": h.user_agent}))
}

async fn login(Form(f): Form<Login>) -> Json<Value> {
    Json(json!({"username": f.username, "password_len": f.password.len()}))
}

fn client() -> TestClient {
    let router = App::new()
        .route("/users/", post(create_user))
        .route("/search", get(search))
        .route("/items/{item_id}", get(read_item))
        .route("/me", get(me))
        .route("/login", post(login))
        .into_router()
        .expect("the app builds");
    TestClient::new(router)
}

fn detail(body: &Value) -> Vec<(String, Value)> {
    body["detail"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|e| {
                    (
                        e["type"].as_str().unwrap_or("").to_owned(),
                        e["loc"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

const GOOD_USER: &str = r#"{"username":"bob","age":3,"address":{"city":"X","zip":"1"}}"#;

async fn still_serving(client: &TestClient) {
    let ok = client
        .post("/users/")
        .header("content-type", "application/json")
        .body(GOOD_USER)
        .send()
        .await;
    assert_eq!(ok.status(), 200, "{}", ok.text());
}

#[tokio::test]
async fn malformed_and_truncated_json_give_json_invalid() {
    let client = client();
    for body in [
        r#"{"username": "bob",,}"#,
        r#"{"username": "bob", "age""#,
        "[1, 2",
    ] {
        let response = client
            .post("/users/")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        assert_eq!(response.status(), 422, "{body}");
        let d = detail(&response.json());
        assert_eq!(d.len(), 1, "{body}");
        assert_eq!(d[0].0, "json_invalid", "{body}");
        assert_eq!(d[0].1[0], "body");
        assert!(d[0].1[1].is_u64(), "position: {:?}", d[0].1);
    }
    still_serving(&client).await;
}

#[tokio::test]
async fn invalid_utf8_is_refused_clearly() {
    let client = client();
    let response = client
        .post("/users/")
        .header("content-type", "application/json")
        .body(vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}'])
        .send()
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(detail(&response.json())[0].0, "json_invalid");
    still_serving(&client).await;
}

#[tokio::test]
async fn wrong_types_and_nested_missing_fields_are_all_reported() {
    let client = client();
    let response = client
        .post("/users/")
        .json(&json!({"username": 5, "age": "old", "address": {"zip": "1"}}))
        .send()
        .await;
    assert_eq!(response.status(), 422);
    let d = detail(&response.json());
    assert_eq!(
        d,
        [
            ("string_type".to_owned(), json!(["body", "username"])),
            ("int_parsing".to_owned(), json!(["body", "age"])),
            ("missing".to_owned(), json!(["body", "address", "city"])),
        ]
    );
}

#[tokio::test]
async fn unknown_content_type_gets_415_and_form_to_json_gets_422() {
    let client = client();
    let response = client
        .post("/users/")
        .header("content-type", "text/xml")
        .body("<user/>")
        .send()
        .await;
    assert_eq!(response.status(), 415);
    let text = response.json::<Value>()["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        text.contains("text/xml") && text.contains("application/json"),
        "{text}"
    );

    let form = client
        .post("/users/")
        .form(&[("username", "bob")])
        .send()
        .await;
    assert_eq!(form.status(), 422);
    assert_eq!(detail(&form.json())[0].0, "model_attributes_type");
    still_serving(&client).await;
}

#[tokio::test]
async fn a_ten_megabyte_body_gets_413() {
    let client = client();
    let mut big = String::from(r#"{"username":""#);
    big.push_str(&"a".repeat(10 * 1024 * 1024));
    big.push_str(r#"","age":1,"address":{"city":"X","zip":"1"}}"#);
    let response = client
        .post("/users/")
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await;
    assert_eq!(response.status(), 413);
    assert!(response.json::<Value>()["detail"].is_string());
    still_serving(&client).await;
}

#[tokio::test]
async fn a_byte_order_mark_before_the_json_is_accepted() {
    let mut body = b"\xEF\xBB\xBF".to_vec();
    body.extend_from_slice(GOOD_USER.as_bytes());
    let response = client()
        .post("/users/")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    assert_eq!(response.status(), 200, "{}", response.text());
}

#[tokio::test]
async fn missing_body_is_field_required() {
    let response = client().post("/users/").send().await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        response.json::<Value>(),
        json!({"detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": null}]})
    );
}

#[tokio::test]
async fn repeated_query_keys_make_lists_and_otherwise_the_last_wins() {
    let client = client();
    let response = client
        .get("/search?tag=a&tag=b&page=1&page=2&verbose=yes")
        .send()
        .await;
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(
        response.json::<Value>(),
        json!({"tag": ["a", "b"], "page": 2, "verbose": true})
    );
    let bad = client.get("/search?page=two&verbose=maybe").send().await;
    assert_eq!(bad.status(), 422);
    assert_eq!(
        detail(&bad.json()),
        [
            ("int_parsing".to_owned(), json!(["query", "page"])),
            ("bool_parsing".to_owned(), json!(["query", "verbose"])),
        ]
    );
}

#[tokio::test]
async fn a_path_parameter_that_does_not_parse_is_int_parsing() {
    let client = client();
    let response = client.get("/items/abc").send().await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        response.json::<Value>(),
        json!({"detail": [{"type": "int_parsing", "loc": ["path", "item_id"], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "abc"}]})
    );
    assert_eq!(
        client.get("/items/42").send().await.json::<Value>(),
        json!({"id": 42})
    );
}

#[tokio::test]
async fn cookies_headers_and_forms_are_read() {
    let client = client();
    let me = client
        .get("/me")
        .cookie("session_id", "s1")
        .header("user-agent", "tests")
        .send()
        .await;
    assert_eq!(
        me.json::<Value>(),
        json!({"session_id": "s1", "user_agent": "tests"})
    );
    let login = client
        .post("/login")
        .form(&[("username", "bob")])
        .send()
        .await;
    assert_eq!(login.status(), 422);
    assert_eq!(
        login.json::<Value>(),
        json!({"detail": [{"type": "missing", "loc": ["body", "password"], "msg": "Field required", "input": null}]})
    );
    let ok = client
        .post("/login")
        .form(&[("username", "bob"), ("password", "pw")])
        .send()
        .await;
    assert_eq!(
        ok.json::<Value>(),
        json!({"username": "bob", "password_len": 2})
    );
}

#[tokio::test]
async fn errors_from_several_extractors_come_together_in_fastapis_order() {
    async fn ordered(Query(_f): Query<Filters>, Json(_u): Json<User>) -> &'static str {
        "ok"
    }
    let router = App::new()
        .route("/x", post(ordered))
        .into_router()
        .expect("builds");
    let response = TestClient::new(router)
        .post("/x?page=z")
        .json(&json!({"username": "bob"}))
        .send()
        .await;
    let d = detail(&response.json());
    assert_eq!(d[0], ("int_parsing".to_owned(), json!(["query", "page"])));
    assert_eq!(d[1].1, json!(["body", "age"]));
    assert_eq!(d[2].1, json!(["body", "address"]));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_input_never_gets_a_server_error(
        body in proptest::collection::vec(any::<u8>(), 0..200),
        content_type in prop::sample::select(vec!["application/json", "text/plain", "application/x-www-form-urlencoded", "", "application/vnd.x+json"]),
        query in "[a-z=&%0-9]{0,30}",
        path in prop::sample::select(vec!["/users/", "/search", "/items/1", "/items/x", "/login", "/me"]),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let status = runtime.block_on(async {
            let client = client();
            let mut req = client.post(&format!("{path}?{query}")).body(body);
            if !content_type.is_empty() {
                req = req.header("content-type", content_type);
            }
            let post = req.send().await.status();
            let get = client.get(&format!("{path}?{query}")).send().await.status();
            (post, get)
        });
        prop_assert!(!status.0.is_server_error(), "{:?}", status);
        prop_assert!(!status.1.is_server_error(), "{:?}", status);
    }
}
