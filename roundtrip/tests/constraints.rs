//! Documented = enforced: every constraint a type publishes (ranges, lengths, patterns,
//! list lengths, multiples, enums) appears in the document and is checked on every
//! request, in the path, the query, headers, cookies, form fields and nested bodies,
//! with FastAPI's error types, messages and `ctx`, even where serde alone would accept
//! the value.

use roundtrip::{App, Cookie, Form, Header, Json, Path, Query, get, post};
use roundtrip_test::TestClient;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Color {
    Red,
    Green,
    Blue,
}

#[derive(Deserialize, JsonSchema)]
struct ThingPath {
    #[schemars(range(min = 1, max = 10))]
    id: i64,
    #[schemars(length(min = 2, max = 4))]
    code: String,
}

#[derive(Deserialize, JsonSchema)]
struct Filters {
    #[schemars(extend("exclusiveMinimum" = 0))]
    gt: Option<i64>,
    #[schemars(extend("exclusiveMaximum" = 10))]
    lt: Option<i64>,
    #[schemars(extend("multipleOf" = 5))]
    step: Option<i64>,
    #[schemars(length(min = 1, max = 2))]
    tags: Option<Vec<String>>,
    color: Option<Color>,
    #[serde(default)]
    flag: bool,
}

#[derive(Deserialize, JsonSchema)]
struct Trace {
    #[schemars(pattern(r"^[0-9a-f]{8}$"))]
    x_trace_id: String,
}

#[derive(Deserialize, JsonSchema)]
struct SessionCookie {
    #[schemars(length(max = 5))]
    session: String,
}

#[derive(Deserialize, JsonSchema)]
struct Signup {
    #[schemars(length(min = 3))]
    username: String,
    #[schemars(range(min = 18))]
    age: i64,
}

#[derive(Deserialize, JsonSchema)]
struct Address {
    #[schemars(pattern(r"^\d{5}$"))]
    zip: String,
}

#[derive(Deserialize, JsonSchema)]
struct Customer {
    #[schemars(length(min = 1))]
    name: String,
    address: Address,
}

#[derive(Deserialize, JsonSchema)]
struct Line {
    #[schemars(range(min = 1))]
    qty: i64,
    #[schemars(range(max = 100.0))]
    discount: f64,
}

#[derive(Deserialize, JsonSchema)]
struct Order {
    customer: Customer,
    #[schemars(length(min = 1))]
    lines: Vec<Line>,
}

async fn thing(
    Path(p): Path<ThingPath>,
    Query(f): Query<Filters>,
    Header(h): Header<Trace>,
    Cookie(c): Cookie<SessionCookie>,
) -> Json<Value> {
    Json(json!({
        "id": p.id, "code": p.code, "gt": f.gt, "lt": f.lt, "step": f.step, "tags": f.tags,
        "color": f.color.map(|c| format!("{c:?}")), "flag": f.flag,
        "trace": h.x_trace_id, "session": c.session,
    }))
}

async fn signup(Form(s): Form<Signup>) -> Json<Value> {
    Json(json!({"username": s.username, "age": s.age}))
}

async fn order(Path(id): Path<i64>, Json(o): Json<Order>) -> Json<Value> {
    let qty: i64 = o.lines.iter().map(|l| l.qty).sum();
    let discount: f64 = o.lines.iter().map(|l| l.discount).sum();
    Json(json!({
        "id": id, "customer": o.customer.name, "zip": o.customer.address.zip,
        "qty": qty, "discount": discount,
    }))
}

fn client() -> TestClient {
    let router = App::new()
        .route("/things/{id}/{code}", get(thing))
        .route("/signup", post(signup))
        .route("/orders/{id}", post(order))
        .into_router()
        .expect("the app builds");
    TestClient::new(router)
}

const TRACE: &str = "0123abcd";

fn thing_request(client: &TestClient, path_and_query: &str) -> roundtrip_test::TestRequest {
    client
        .get(path_and_query)
        .header("x-trace-id", TRACE)
        .cookie("session", "s1")
}

/// The only error entry of a 422, or a panic that shows the answer.
async fn single_error(request: roundtrip_test::TestRequest) -> Value {
    let response = request.send().await;
    assert_eq!(response.status(), 422, "{}", response.text());
    let body: Value = response.json();
    let detail = body["detail"].as_array().cloned().unwrap_or_default();
    assert_eq!(detail.len(), 1, "{body}");
    detail[0].clone()
}

#[tokio::test]
async fn valid_input_passes_every_constraint() {
    let response = thing_request(
        &client(),
        "/things/10/abcd?gt=1&lt=9&step=15&tags=a&tags=b&color=green&flag=on",
    )
    .send()
    .await;
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(
        response.json::<Value>(),
        json!({
            "id": 10, "code": "abcd", "gt": 1, "lt": 9, "step": 15, "tags": ["a", "b"],
            "color": "Green", "flag": true, "trace": TRACE, "session": "s1",
        })
    );
}

#[tokio::test]
async fn path_ranges_and_lengths_are_enforced() {
    let client = client();
    assert_eq!(
        single_error(thing_request(&client, "/things/0/ab")).await,
        json!({"type": "greater_than_equal", "loc": ["path", "id"],
               "msg": "Input should be greater than or equal to 1", "input": "0", "ctx": {"ge": 1}})
    );
    assert_eq!(
        single_error(thing_request(&client, "/things/11/ab")).await,
        json!({"type": "less_than_equal", "loc": ["path", "id"],
               "msg": "Input should be less than or equal to 10", "input": "11", "ctx": {"le": 10}})
    );
    assert_eq!(
        single_error(thing_request(&client, "/things/1/abcde")).await,
        json!({"type": "string_too_long", "loc": ["path", "code"],
               "msg": "String should have at most 4 characters", "input": "abcde", "ctx": {"max_length": 4}})
    );
}

#[tokio::test]
async fn query_constraints_are_enforced_where_serde_would_accept() {
    let client = client();
    let cases = [
        (
            "gt=0",
            json!({"type": "greater_than", "loc": ["query", "gt"],
                   "msg": "Input should be greater than 0", "input": "0", "ctx": {"gt": 0}}),
        ),
        (
            "lt=10",
            json!({"type": "less_than", "loc": ["query", "lt"],
                   "msg": "Input should be less than 10", "input": "10", "ctx": {"lt": 10}}),
        ),
        (
            "step=7",
            json!({"type": "multiple_of", "loc": ["query", "step"],
                   "msg": "Input should be a multiple of 5", "input": "7", "ctx": {"multiple_of": 5}}),
        ),
        (
            "tags=a&tags=b&tags=c",
            json!({"type": "too_long", "loc": ["query", "tags"],
                   "msg": "List should have at most 2 items after validation, not 3",
                   "input": ["a", "b", "c"],
                   "ctx": {"field_type": "List", "max_length": 2, "actual_length": 3}}),
        ),
        (
            "color=pink",
            json!({"type": "enum", "loc": ["query", "color"],
                   "msg": "Input should be 'red', 'green' or 'blue'", "input": "pink",
                   "ctx": {"expected": "'red', 'green' or 'blue'"}}),
        ),
        (
            "flag=maybe",
            json!({"type": "bool_parsing", "loc": ["query", "flag"],
                   "msg": "Input should be a valid boolean, unable to interpret input", "input": "maybe"}),
        ),
    ];
    for (query, expected) in cases {
        let url = format!("/things/1/ab?{query}");
        assert_eq!(
            single_error(thing_request(&client, &url)).await,
            expected,
            "{query}"
        );
    }
}

#[tokio::test]
async fn query_booleans_are_read_as_fastapi_reads_them() {
    let client = client();
    for (raw, expected) in [
        ("yes", true),
        ("on", true),
        ("1", true),
        ("true", true),
        ("True", true),
        ("no", false),
        ("off", false),
        ("0", false),
        ("false", false),
    ] {
        let url = format!("/things/1/ab?flag={raw}");
        let response = thing_request(&client, &url).send().await;
        assert_eq!(response.status(), 200, "{raw}: {}", response.text());
        assert_eq!(response.json::<Value>()["flag"], expected, "{raw}");
    }
}

#[tokio::test]
async fn header_and_cookie_constraints_are_enforced() {
    let client = client();
    assert_eq!(
        single_error(
            client
                .get("/things/1/ab")
                .header("x-trace-id", "not-hex!")
                .cookie("session", "s1")
        )
        .await,
        json!({"type": "string_pattern_mismatch", "loc": ["header", "x-trace-id"],
               "msg": "String should match pattern '^[0-9a-f]{8}$'", "input": "not-hex!",
               "ctx": {"pattern": "^[0-9a-f]{8}$"}})
    );
    assert_eq!(
        single_error(
            client
                .get("/things/1/ab")
                .header("x-trace-id", TRACE)
                .cookie("session", "toolong")
        )
        .await,
        json!({"type": "string_too_long", "loc": ["cookie", "session"],
               "msg": "String should have at most 5 characters", "input": "toolong",
               "ctx": {"max_length": 5}})
    );
}

#[tokio::test]
async fn every_location_is_reported_in_one_answer() {
    let response = client()
        .get("/things/0/ab?gt=0&color=pink")
        .header("x-trace-id", "nope")
        .send()
        .await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json();
    let locs: Vec<Value> = body["detail"]
        .as_array()
        .map(|d| d.iter().map(|e| e["loc"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(
        locs,
        [
            json!(["path", "id"]),
            json!(["query", "gt"]),
            json!(["query", "color"]),
            json!(["header", "x-trace-id"]),
            json!(["cookie", "session"]),
        ]
    );
}

#[tokio::test]
async fn form_fields_are_constrained() {
    let response = client()
        .post("/signup")
        .form(&[("username", "ab"), ("age", "17")])
        .send()
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        response.json::<Value>()["detail"],
        json!([
            {"type": "string_too_short", "loc": ["body", "username"],
             "msg": "String should have at least 3 characters", "input": "ab", "ctx": {"min_length": 3}},
            {"type": "greater_than_equal", "loc": ["body", "age"],
             "msg": "Input should be greater than or equal to 18", "input": "17", "ctx": {"ge": 18}},
        ])
    );
    let ok = client()
        .post("/signup")
        .form(&[("username", "abc"), ("age", "18")])
        .send()
        .await;
    assert_eq!(ok.json::<Value>(), json!({"username": "abc", "age": 18}));
}

#[tokio::test]
async fn nested_body_constraints_report_the_full_path() {
    let response = client()
        .post("/orders/1")
        .json(&json!({
            "customer": {"name": "", "address": {"zip": "12"}},
            "lines": [{"qty": 1, "discount": 5}, {"qty": 0, "discount": 100.5}],
        }))
        .send()
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        response.json::<Value>()["detail"],
        json!([
            {"type": "string_too_short", "loc": ["body", "customer", "name"],
             "msg": "String should have at least 1 character", "input": "", "ctx": {"min_length": 1}},
            {"type": "string_pattern_mismatch", "loc": ["body", "customer", "address", "zip"],
             "msg": "String should match pattern '^\\d{5}$'", "input": "12", "ctx": {"pattern": "^\\d{5}$"}},
            {"type": "greater_than_equal", "loc": ["body", "lines", 1, "qty"],
             "msg": "Input should be greater than or equal to 1", "input": 0, "ctx": {"ge": 1}},
            {"type": "less_than_equal", "loc": ["body", "lines", 1, "discount"],
             "msg": "Input should be less than or equal to 100", "input": 100.5, "ctx": {"le": 100.0}},
        ])
    );
    let empty = client()
        .post("/orders/1")
        .json(&json!({"customer": {"name": "A", "address": {"zip": "12345"}}, "lines": []}))
        .send()
        .await;
    assert_eq!(
        empty.json::<Value>()["detail"],
        json!([{"type": "too_short", "loc": ["body", "lines"],
                "msg": "List should have at least 1 item after validation, not 0", "input": [],
                "ctx": {"field_type": "List", "min_length": 1, "actual_length": 0}}])
    );
    let ok = client()
        .post("/orders/1")
        .json(
            &json!({"customer": {"name": "A", "address": {"zip": "12345"}},
                      "lines": [{"qty": 2, "discount": 100}]}),
        )
        .send()
        .await;
    assert_eq!(ok.status(), 200, "{}", ok.text());
}

#[tokio::test]
async fn every_enforced_constraint_is_published() {
    let doc: Value = client().get("/openapi.json").send().await.json();
    let params = doc["paths"]["/things/{id}/{code}"]["get"]["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let schema = |name: &str| {
        params
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["schema"].clone())
            .unwrap_or_else(|| panic!("parameter {name} in {params:?}"))
    };
    assert_eq!(
        (
            schema("id")["minimum"].clone(),
            schema("id")["maximum"].clone()
        ),
        (json!(1), json!(10))
    );
    assert_eq!(schema("code")["maxLength"], 4);
    assert_eq!(schema("gt")["exclusiveMinimum"], 0);
    assert_eq!(schema("lt")["exclusiveMaximum"], 10);
    assert_eq!(schema("step")["multipleOf"], 5);
    assert_eq!(schema("tags")["maxItems"], 2);
    assert_eq!(schema("x-trace-id")["pattern"], "^[0-9a-f]{8}$");
    assert_eq!(schema("session")["maxLength"], 5);
    let color = schema("color").to_string();
    assert!(color.contains("Color"), "{color}");
    assert_eq!(
        doc["components"]["schemas"]["Color"]["enum"],
        json!(["red", "green", "blue"])
    );
    let line = &doc["components"]["schemas"]["Line"]["properties"];
    assert_eq!(line["qty"]["minimum"], 1);
    assert_eq!(line["discount"]["maximum"], 100.0);
    assert_eq!(
        doc["components"]["schemas"]["Address"]["properties"]["zip"]["pattern"],
        r"^\d{5}$"
    );
    let form = &doc["components"]["schemas"]["Body_signup_signup_post"]["properties"];
    assert_eq!(form["age"]["minimum"], 18);
    assert_eq!(form["username"]["minLength"], 3);
}
