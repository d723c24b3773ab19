//! Behaviour of the whole module: parsing and printing, evaluation, URL safety and lint.

use serde_json::{Value, json};

use super::*;

fn template(input: &str) -> Template {
    match Template::parse(input) {
        Ok(template) => template,
        Err(err) => panic!("{input:?} should parse: {err}"),
    }
}

fn parse_error(input: &str) -> ParseError {
    match Template::parse(input) {
        Ok(template) => panic!("{input:?} should not parse, got {template:?}"),
        Err(err) => err,
    }
}

fn eval_error(input: &str, request: &RequestContext) -> EvalError {
    match template(input).resolve_url(request, None) {
        Ok(url) => panic!("{input:?} should not resolve, got {url}"),
        Err(err) => err,
    }
}

fn evaluate(input: &str, request: &RequestContext) -> String {
    match template(input).evaluate(request, None) {
        Ok(text) => text,
        Err(err) => panic!("{input:?} should evaluate: {err}"),
    }
}

fn invoice_request(body: Value) -> RequestContext {
    RequestContext::new(
        "POST",
        "http://api.example.com/invoices/?callback_url=https://www.external.org/events",
    )
    .with_body(body)
}

// ---- parsing and printing ----

#[test]
fn every_form_prints_back_as_written() {
    let forms = [
        "$url",
        "$method",
        "$statusCode",
        "$callback_url",
        "$request.header.X-Request-Id",
        "$request.header.!#$%&'*+-.^_`|~09azAZ",
        "$request.query.callback_url",
        "$request.query.a b{c}",
        "$request.path.invoice_id",
        "$request.body",
        "$request.body#",
        "$request.body#/",
        "$request.body#/id",
        "$request.body#/a~1b/m~0n/0",
        "$request.body#/a}b{c",
        "$request.body.id",
        "$request.body.customer.address.city",
        "$response.header.Location",
        "$response.body",
        "$response.body#/status",
        "$response.body.status",
        "{$callback_url}/invoices/{$request.body.id}",
        "{$request.query.callback_url}/invoices/{$request.body#/id}",
        "http://notificationServer.com?transactionId={$request.body#/id}&email={$request.body#/email}",
        "https://example.com/{$method}{$url}?s={$statusCode}",
        "https://example.com/no/expressions",
        "",
        "ünïcødé/{$request.body#/ключ}/ß",
    ];
    for form in forms {
        let parsed = template(form);
        assert_eq!(parsed.to_string(), form);
        assert_eq!(template(&parsed.to_string()), parsed);
    }
    for form in forms.iter().filter(|form| form.starts_with('$')) {
        let expr = RuntimeExpr::parse(form).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(expr.to_string(), *form);
    }
}

#[test]
fn template_parts_keep_literals_and_expressions_apart() {
    let parsed = template("{$callback_url}/invoices/{$request.body.id}");
    assert!(!parsed.is_bare());
    assert_eq!(parsed.parts().len(), 3);
    assert_eq!(parsed.parts()[0], Part::Expr(RuntimeExpr::CallbackUrl));
    assert_eq!(parsed.parts()[1], Part::Literal("/invoices/".to_owned()));
    assert!(template("$request.body#/url").is_bare());
}

#[test]
fn bare_and_braced_body_forms_share_one_pointer() {
    let dotted = template("{$request.body.items.0}");
    let pointer = template("{$request.body#/items/0}");
    assert_ne!(dotted, pointer, "equality compares the written form");
    assert_eq!(dotted.to_spec(), pointer);
    let pointers: Vec<String> = dotted
        .request_body_pointers()
        .map(ToString::to_string)
        .collect();
    assert_eq!(pointers, ["/items/0"]);
}

#[test]
fn accessors_report_what_a_template_needs() {
    let parsed = template(
        "{$callback_url}/t/{$request.path.tenant}/{$request.header.X-Key}?q={$request.query.q}",
    );
    assert!(!parsed.needs_request_body());
    assert!(!parsed.needs_response());
    assert_eq!(
        parsed.query_params().collect::<Vec<_>>(),
        ["callback_url", "q"]
    );
    assert_eq!(parsed.path_params().collect::<Vec<_>>(), ["tenant"]);
    assert_eq!(parsed.request_headers().collect::<Vec<_>>(), ["X-Key"]);
    assert!(parsed.uses_fastapi_dialect());

    let with_body = template("{$request.query.u}/{$request.body}");
    assert!(with_body.needs_request_body());
    assert!(with_body.request_body_pointers().all(JsonPointer::is_root));
    assert!(!with_body.uses_fastapi_dialect());

    assert!(template("{$request.query.u}?s={$statusCode}").needs_response());
    assert!(template("{$request.query.u}/{$response.body#/id}").needs_response());
    assert!(!template("{$response.body#/id}").needs_request_body());
}

#[test]
fn serde_reads_and_writes_the_written_form() {
    let parsed = template("{$callback_url}/invoices/{$request.body.id}");
    let json = serde_json::to_value(&parsed).unwrap_or_default();
    assert_eq!(json, json!("{$callback_url}/invoices/{$request.body.id}"));
    let back: Result<Template, _> = serde_json::from_value(json);
    assert_eq!(back.ok(), Some(parsed));
    let bad: Result<Template, _> = serde_json::from_value(json!("{$nope}"));
    assert!(bad.is_err());
    let expr: Result<RuntimeExpr, _> = serde_json::from_value(json!("$request.body#/id"));
    assert_eq!(
        expr.map(|e| e.to_string()).ok().as_deref(),
        Some("$request.body#/id")
    );
}

// ---- parse errors ----

#[track_caller]
fn assert_parse_error(input: &str, position: usize, expected: &[&str], found: Option<&str>) {
    let err = parse_error(input);
    assert_eq!(err.position(), position, "position in {input:?}: {err}");
    assert_eq!(err.expected(), expected, "expected in {input:?}: {err}");
    assert_eq!(err.found().as_deref(), found, "found in {input:?}: {err}");
    assert_eq!(err.input(), input);
}

const ROOTS: &[&str] = &[
    "\"$url\"",
    "\"$method\"",
    "\"$statusCode\"",
    "\"$request.\"",
    "\"$response.\"",
];

#[test]
fn unknown_root_reads_as_documented() {
    let err = parse_error("{$reqest.body}");
    assert_eq!(
        err.to_string(),
        "invalid runtime expression \"{$reqest.body}\" at position 2: expected one of \
         \"$url\", \"$method\", \"$statusCode\", \"$request.\", \"$response.\", found \
         \"$reqest.bo...\""
    );
    assert_eq!(err.byte_offset(), 1);
    assert_parse_error("$Request.body", 1, ROOTS, Some("$Request.b..."));
    assert_parse_error("$statusCode2", 1, ROOTS, Some("$statusCod..."));
    assert_parse_error("x/{ $url}", 4, ROOTS, Some(" $url}"));
}

#[test]
fn positions_count_characters_not_bytes() {
    let err = parse_error("ü/{$nope}");
    assert_eq!(err.position(), 4);
    assert_eq!(err.byte_offset(), 4);
}

#[test]
fn missing_source_is_reported_where_it_belongs() {
    let sources = ["\"header.\"", "\"query.\"", "\"path.\"", "\"body\""];
    assert_parse_error("{$request.}", 11, &sources, Some("}"));
    assert_parse_error("$request.", 10, &sources, None);
    assert_parse_error("$request.headers.x", 10, &sources, Some("headers.x"));
    assert_parse_error("{$request}", 10, &["\".\""], Some("}"));
    assert_parse_error("$request.query", 15, &["\".\""], None);
    assert_parse_error("{$request.query.}", 17, &["a parameter name"], Some("}"));
    assert_parse_error("$request.path.", 15, &["a parameter name"], None);
}

#[test]
fn cookies_are_not_a_source_and_the_error_says_what_to_do() {
    let err = parse_error("{$request.cookie.session}/x");
    assert_eq!(err.position(), 11);
    assert!(
        err.to_string().ends_with(
            "(runtime expressions cannot read cookies; send the value in a header, a query \
             parameter or the body)"
        ),
        "{err}"
    );
}

#[test]
fn response_has_no_query_or_path_source() {
    let err = parse_error("{$response.query.x}");
    assert_eq!(err.position(), 12);
    assert_eq!(err.expected(), ["\"header.\"", "\"body\""]);
    assert!(
        err.to_string()
            .ends_with("(a response has no query or path parameters)")
    );
}

#[test]
fn bad_header_token_is_pointed_at() {
    assert_parse_error(
        "{$request.header.X(Y)}",
        19,
        &["a header name character", "\"}\""],
        Some("(Y)}"),
    );
    assert_parse_error(
        "$request.header.X Y",
        18,
        &["a header name character", "end of expression"],
        Some(" Y"),
    );
    assert_parse_error("{$request.header.}", 18, &["a header name"], Some("}"));
    assert_parse_error("{$request.header.é}", 18, &["a header name"], Some("é}"));
}

#[test]
fn unterminated_brace_points_past_the_end_and_names_the_brace() {
    let err = parse_error("https://x.org/{$request.body#/id");
    assert_eq!(err.position(), 33);
    assert_eq!(err.expected(), ["\"}\""]);
    assert_eq!(err.found(), None);
    assert_eq!(
        err.to_string(),
        "invalid runtime expression \"https://x.org/{$request.body#/id\" at position 33: \
         expected \"}\", found end of input (the \"{\" at position 15 is never closed)"
    );
    assert_parse_error("{$url", 6, &["\"}\""], None);
}

#[test]
fn stray_closing_brace_is_refused() {
    let err = parse_error("https://x.org/}");
    assert_eq!(err.position(), 15);
    assert_eq!(err.expected(), ["literal text", "\"{\""]);
    assert!(err.to_string().ends_with("(this \"}\" closes no \"{\")"));
    assert_parse_error("{$url}}", 7, &["literal text", "\"{\""], Some("}"));
}

#[test]
fn empty_braces_are_refused() {
    assert_parse_error("https://x.org/{}", 16, ROOTS, Some("}"));
    assert_parse_error("{}", 2, ROOTS, Some("}"));
}

#[test]
fn trailing_junk_is_refused() {
    assert_parse_error("$url/x", 5, &["end of expression"], Some("/x"));
    assert_parse_error("{$url x}", 6, &["\"}\""], Some(" x}"));
    assert_parse_error(
        "$request.body x",
        14,
        &["\"#\"", "\".\"", "end of expression"],
        Some(" x"),
    );
    assert_parse_error(
        "$request.bodyx",
        10,
        &["\"header.\"", "\"query.\"", "\"path.\"", "\"body\""],
        Some("bodyx"),
    );
    assert_parse_error("$callback_url/x", 14, &["end of expression"], Some("/x"));
    // A bare expression is only for whole strings; braces are needed inside a URL.
    let err = RuntimeExpr::parse("{$url}");
    assert_eq!(err.map_err(|e| e.position()), Err(1));
}

#[test]
fn json_pointer_escapes_must_be_tilde_zero_or_one() {
    assert_parse_error(
        "{$request.body#/a~2}",
        18,
        &["\"~0\"", "\"~1\""],
        Some("~2}"),
    );
    assert_parse_error("$request.body#/a~", 17, &["\"~0\"", "\"~1\""], Some("~"));
    assert_parse_error("{$request.body#/~}", 17, &["\"~0\"", "\"~1\""], Some("~}"));
    assert_parse_error(
        "$request.body#id",
        15,
        &["\"/\"", "end of expression"],
        Some("id"),
    );
}

#[test]
fn dotted_body_paths_are_checked() {
    assert_parse_error("$request.body.", 15, &["a body field name"], None);
    assert_parse_error(
        "{$request.body.a..b}",
        18,
        &["a body field name"],
        Some(".b}"),
    );
    let err = parse_error("$request.body.items[0]");
    assert_eq!(err.position(), 20);
    assert_eq!(
        err.expected(),
        ["\".\"", "a body field name character", "end of expression"]
    );
    assert!(err.to_string().contains("$request.body#/items/0"));
}

#[test]
fn parameter_names_are_ascii() {
    assert_parse_error(
        "$request.query.café",
        19,
        &["an ASCII character", "end of expression"],
        Some("é"),
    );
}

// ---- evaluation ----

#[test]
fn fastapi_invoice_callback_resolves() {
    let request = invoice_request(json!({"id": "2expen51ve", "customer": "Ada", "total": 9.5}));
    let parsed = template("{$callback_url}/invoices/{$request.body.id}");
    let url = parsed
        .resolve_url(&request, None)
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        url.as_str(),
        "https://www.external.org/events/invoices/2expen51ve"
    );
    let spec = template("{$request.query.callback_url}/invoices/{$request.body#/id}");
    assert_eq!(
        spec.resolve_url(&request, None).ok(),
        Some(url),
        "both spellings mean the same"
    );
}

#[test]
fn json_pointer_escapes_and_array_indices_resolve() {
    let request = RequestContext::new("POST", "/").with_body(json!({
        "a/b": {"m~n": "escaped"},
        "items": [{"id": "first"}, {"id": "second"}],
        "": "empty key",
    }));
    assert_eq!(evaluate("{$request.body#/a~1b/m~0n}", &request), "escaped");
    assert_eq!(evaluate("{$request.body#/items/1/id}", &request), "second");
    assert_eq!(evaluate("{$request.body.items.0.id}", &request), "first");
    assert_eq!(evaluate("{$request.body#/}", &request), "empty key");
    let err = template("{$request.body#/items/01/id}").evaluate(&request, None);
    assert_eq!(
        err.err().and_then(|e| e.missing().cloned()),
        Some(Missing::RequestBodyValue(JsonPointer::from_tokens([
            "items", "01", "id"
        ])))
    );
}

#[test]
fn empty_pointer_means_the_whole_body() {
    let request = RequestContext::new("POST", "/").with_body(json!("whole"));
    assert_eq!(evaluate("$request.body", &request), "whole");
    assert_eq!(evaluate("$request.body#", &request), "whole");
    assert_eq!(evaluate("x/{$request.body}", &request), "x/whole");
}

#[test]
fn scalars_render_as_json_writes_them() {
    let request = RequestContext::new("POST", "/").with_body(json!({
        "n": 42, "neg": -1.5, "big": 12345678901234567890u64, "t": true, "f": false, "s": "text",
    }));
    let values = "{$request.body#/n},{$request.body#/neg},{$request.body#/big},\
                  {$request.body#/t},{$request.body#/f},{$request.body#/s}";
    assert_eq!(
        evaluate(values, &request),
        "42,-1.5,12345678901234567890,true,false,text"
    );
}

#[test]
fn header_names_are_matched_without_case() {
    let request = RequestContext::new("POST", "/")
        .with_header("x-request-id", "abc123")
        .with_header("X-Request-Id", "second");
    assert_eq!(evaluate("$request.header.X-Request-Id", &request), "abc123");
    assert_eq!(evaluate("$request.header.X-REQUEST-ID", &request), "abc123");
    let response = ResponseContext::new(201).with_header("location", "/invoices/7");
    let expr = RuntimeExpr::parse("$response.header.Location").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        expr.evaluate(&request, Some(&response)).ok().as_deref(),
        Some("/invoices/7")
    );
}

#[test]
fn path_and_query_parameters_resolve() {
    let request = RequestContext::new(
        "GET",
        "http://api.example.com/t/acme?page=2&page=3&q=a%20b+c",
    )
    .with_path_param("tenant", "acme");
    assert_eq!(evaluate("$request.path.tenant", &request), "acme");
    assert_eq!(
        evaluate("$request.query.page", &request),
        "2",
        "first value wins"
    );
    assert_eq!(evaluate("$request.query.q", &request), "a b c", "decoded");
    let added = RequestContext::new("GET", "/").with_query_param("q", "added");
    assert_eq!(evaluate("$request.query.q", &added), "added");
}

#[test]
fn url_method_and_status_code_resolve() {
    let request = RequestContext::new("PATCH", "http://api.example.com/items/1?x=1");
    assert_eq!(
        evaluate("$url", &request),
        "http://api.example.com/items/1?x=1"
    );
    assert_eq!(evaluate("$method", &request), "PATCH");

    let status = template("$statusCode");
    let response = ResponseContext::new(202);
    assert_eq!(
        status.evaluate(&request, Some(&response)).ok().as_deref(),
        Some("202")
    );
    let err = status.evaluate(&request, None).err();
    assert!(err.as_ref().is_some_and(EvalError::is_no_response));
    assert_eq!(
        err.map(|e| e.to_string()).as_deref(),
        Some(
            "cannot evaluate \"$statusCode\": \"$statusCode\" reads the response, but it was \
             evaluated without one"
        )
    );
}

#[test]
fn response_forms_work_with_a_response_and_fail_without() {
    let request = RequestContext::new("POST", "/");
    let response = ResponseContext::new(201).with_body(json!({"id": 7, "links": {"self": "/7"}}));
    for (input, value) in [
        ("$response.body#/id", "7"),
        ("$response.body.links.self", "/7"),
        ("x/{$response.body#/links/self}", "x/%2F7"),
    ] {
        let parsed = template(input);
        assert_eq!(
            parsed.evaluate(&request, Some(&response)).ok().as_deref(),
            Some(value)
        );
        let err = parsed.evaluate(&request, None).err();
        assert!(err.is_some_and(|e| e.is_no_response()), "{input}");
    }
    let bodiless = ResponseContext::new(204);
    let err = template("$response.body#/id").evaluate(&request, Some(&bodiless));
    assert_eq!(
        err.err().and_then(|e| e.missing().cloned()),
        Some(Missing::ResponseBody)
    );
}

// ---- evaluation errors ----

#[test]
fn missing_query_parameter_names_the_parameter() {
    let request = RequestContext::new("POST", "/invoices/").with_body(json!({"id": "1"}));
    let err = eval_error("{$callback_url}/invoices/{$request.body.id}", &request);
    assert!(err.is_missing());
    assert_eq!(
        err.missing(),
        Some(&Missing::QueryParam("callback_url".to_owned()))
    );
    assert_eq!(err.expression(), Some(&RuntimeExpr::CallbackUrl));
    assert_eq!(
        err.template(),
        Some("{$callback_url}/invoices/{$request.body.id}")
    );
    assert_eq!(
        err.to_string(),
        "cannot evaluate \"{$callback_url}/invoices/{$request.body.id}\": \"$callback_url\" \
         has no value: the request has no query parameter \"callback_url\""
    );
}

#[test]
fn missing_body_and_missing_field_are_told_apart() {
    let bodiless = RequestContext::new(
        "POST",
        "/invoices/?callback_url=https://www.external.org/events",
    );
    let err = eval_error("{$callback_url}/invoices/{$request.body.id}", &bodiless);
    assert_eq!(err.missing(), Some(&Missing::RequestBody));
    assert_eq!(
        err.expression().map(ToString::to_string).as_deref(),
        Some("$request.body.id")
    );

    let err = eval_error(
        "{$callback_url}/invoices/{$request.body.id}",
        &invoice_request(json!({"ID": "x"})),
    );
    assert_eq!(
        err.missing(),
        Some(&Missing::RequestBodyValue(JsonPointer::from_tokens(["id"])))
    );
    assert!(
        err.to_string()
            .ends_with("the request body has no value at \"/id\"")
    );
}

#[test]
fn non_scalar_values_are_refused() {
    for (body, kind) in [
        (json!({"id": {"nested": 1}}), "an object"),
        (json!({"id": [1, 2]}), "an array"),
        (json!({"id": null}), "null"),
    ] {
        let err = eval_error(
            "{$callback_url}/invoices/{$request.body#/id}",
            &invoice_request(body),
        );
        assert!(err.is_not_scalar());
        assert_eq!(err.non_scalar_type(), Some(kind));
        assert!(!err.is_missing());
    }
}

#[test]
fn value_that_is_not_a_url_is_refused_with_the_reason() {
    let request = |callback_url: &str| {
        RequestContext::new("POST", "/").with_query_param("callback_url", callback_url)
    };
    let err = eval_error("{$callback_url}/hook", &request("https://h.example:99999"));
    assert!(err.is_not_url());
    assert_eq!(
        err.not_url_reason(),
        Some(&NotUrlReason::Invalid(url::ParseError::InvalidPort))
    );
    assert!(std::error::Error::source(&err).is_some());

    let err = eval_error("{$callback_url}/hook", &request("ftp://files.example.com"));
    assert_eq!(
        err.not_url_reason(),
        Some(&NotUrlReason::Scheme("ftp".to_owned()))
    );

    let err = eval_error("{$callback_url}/hook", &request("localhost:8000"));
    assert_eq!(
        err.not_url_reason(),
        Some(&NotUrlReason::Scheme("localhost".to_owned()))
    );
    assert!(err.to_string().contains("http:// or https://"));

    let err = eval_error("{$callback_url}", &request("https://"));
    assert_eq!(
        err.not_url_reason(),
        Some(&NotUrlReason::Invalid(url::ParseError::EmptyHost))
    );
}

#[test]
fn relative_url_is_refused() {
    let err = eval_error(
        "/invoices/{$request.body#/id}",
        &invoice_request(json!({"id": "1"})),
    );
    assert_eq!(err.not_url_reason(), Some(&NotUrlReason::Relative));
    assert_eq!(err.expression(), None);
    assert_eq!(
        err.to_string(),
        "cannot evaluate \"/invoices/{$request.body#/id}\": the result is not a callback URL: \
         it is relative (it has no scheme and host)"
    );
}

#[test]
fn error_messages_never_quote_values() {
    let secret = "https://www.external.org/events?token=SECRET";
    let request = RequestContext::new("POST", "/").with_query_param("callback_url", secret);
    let err = eval_error("{$callback_url}/{$request.body#/id}", &request);
    assert!(!err.to_string().contains("SECRET"));
    let request = RequestContext::new("POST", "/").with_query_param("callback_url", "SECRET");
    let err = eval_error("{$callback_url}/x", &request);
    assert!(err.is_not_url());
    assert!(!err.to_string().contains("SECRET"));
}

// ---- values cannot change the URL's structure ----

#[test]
fn base_url_at_the_start_goes_in_verbatim() {
    let request = RequestContext::new("POST", "/")
        .with_query_param("callback_url", "https://h.example/hook?token=a%20b")
        .with_body(json!({"id": "1&admin=true"}));
    assert_eq!(
        evaluate("{$callback_url}&id={$request.body#/id}", &request),
        "https://h.example/hook?token=a%20b&id=1%26admin%3Dtrue"
    );
}

#[test]
fn path_values_cannot_climb_or_start_a_query() {
    let parsed = template("{$callback_url}/invoices/{$request.body#/id}");
    for (id, path) in [
        ("../../admin", "/events/invoices/..%2F..%2Fadmin"),
        ("x?y#z", "/events/invoices/x%3Fy%23z"),
        ("a\\..\\b", "/events/invoices/a%5C..%5Cb"),
        ("%2e%2e", "/events/invoices/%252e%252e"),
    ] {
        let url = parsed
            .resolve_url(&invoice_request(json!({"id": id})), None)
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(url.path(), path);
        assert_eq!(url.query(), None);
        assert_eq!(url.fragment(), None);
        assert_eq!(url.host_str(), Some("www.external.org"));
    }
}

#[test]
fn dot_segment_values_are_refused() {
    let parsed = template("https://h.example/tenants/{$request.body#/t}/hook");
    for t in [".", ".."] {
        let err = parsed
            .evaluate(
                &RequestContext::new("POST", "/").with_body(json!({"t": t})),
                None,
            )
            .err();
        assert!(err.as_ref().is_some_and(EvalError::is_unsafe_value), "{t}");
        assert_eq!(
            err.and_then(|e| e.expression().map(ToString::to_string))
                .as_deref(),
            Some("$request.body#/t")
        );
    }
    let ok = parsed.evaluate(
        &RequestContext::new("POST", "/").with_body(json!({"t": "..."})),
        None,
    );
    assert_eq!(
        ok.ok().as_deref(),
        Some("https://h.example/tenants/.../hook")
    );
}

#[test]
fn values_after_the_host_cannot_take_it_over() {
    let request = RequestContext::new("POST", "/").with_body(json!({"p": "@attacker.example"}));
    for input in [
        "https://h.example{$request.body#/p}/x",
        "https://h.example/{$request.body#/p}/x",
    ] {
        match template(input).resolve_url(&request, None) {
            Ok(url) => assert_eq!(url.host_str(), Some("h.example"), "{input}"),
            // `https://h.example%40attacker.example/x` is no URL at all.
            Err(err) => assert!(err.is_not_url(), "{input}: {err}"),
        }
    }
}

#[test]
fn query_values_cannot_add_parameters() {
    let request = invoice_request(json!({"id": "1&admin=true#frag", "n": "a+b c"}));
    let url = template("{$callback_url}?id={$request.body#/id}&n={$request.body#/n}")
        .resolve_url(&request, None)
        .unwrap_or_else(|err| panic!("{err}"));
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(
        pairs,
        [
            ("id".to_owned(), "1&admin=true#frag".to_owned()),
            ("n".to_owned(), "a+b c".to_owned())
        ]
    );
    assert_eq!(url.fragment(), None);
}

// ---- lint ----

#[test]
fn lint_warns_about_fastapi_spellings_with_positions() {
    let parsed = template("{$callback_url}/invoices/{$request.body.id}");
    let warnings = parsed.lint();
    assert_eq!(warnings.len(), 2);
    assert_eq!(warnings[0].position(), 2);
    assert_eq!(warnings[0].written(), &RuntimeExpr::CallbackUrl);
    assert_eq!(
        warnings[0].suggested().to_string(),
        "$request.query.callback_url"
    );
    assert_eq!(warnings[1].position(), 27);
    assert_eq!(warnings[1].suggested().to_string(), "$request.body#/id");
    assert_eq!(
        warnings[1].to_string(),
        "\"{$callback_url}/invoices/{$request.body.id}\" at position 27: \"$request.body.id\" \
         is FastAPI's spelling, not an OpenAPI runtime expression; tools that follow the spec \
         expect \"$request.body#/id\""
    );
    assert_eq!(
        parsed.to_string(),
        "{$callback_url}/invoices/{$request.body.id}",
        "kept as written"
    );
}

#[test]
fn lint_is_quiet_for_spec_spellings() {
    for input in [
        "{$request.query.callback_url}/invoices/{$request.body#/id}",
        "$request.body#/url",
        "https://ü.example/{$request.body}?s={$statusCode}",
    ] {
        assert!(template(input).lint().is_empty(), "{input}");
    }
    let warnings = template("ü{$url}{$response.body.a.b}").lint();
    assert_eq!(
        warnings
            .iter()
            .map(LintWarning::position)
            .collect::<Vec<_>>(),
        [9]
    );
    assert_eq!(
        template("$callback_url")
            .lint()
            .first()
            .map(LintWarning::position),
        Some(1)
    );
}

// ---- properties ----

mod properties {
    use proptest::prelude::*;
    use proptest::sample::select;

    use super::*;

    /// Inputs assembled from the grammar's own pieces reach deeper than random text.
    fn grammar_soup() -> impl Strategy<Value = String> {
        let pieces = vec![
            "$",
            "{",
            "}",
            ".",
            "#",
            "/",
            "~",
            "~0",
            "~1",
            "~2",
            "request",
            "response",
            "url",
            "method",
            "statusCode",
            "callback_url",
            "header",
            "query",
            "path",
            "body",
            "x",
            "é",
            " ",
            "?",
            "[",
            "\0",
            "..",
            "%",
            "&",
            "http://h.example/",
        ];
        prop::collection::vec(select(pieces), 0..24).prop_map(|pieces| pieces.concat())
    }

    fn escape_pointer_token(token: &str) -> String {
        token.replace('~', "~0").replace('/', "~1")
    }

    /// A valid expression for the given context (`braced`: inside `{…}`).
    fn expression(braced: bool) -> impl Strategy<Value = String> {
        let name = if braced {
            "[\\x01-\\x7c\\x7e\\x7f]{1,10}"
        } else {
            "[\\x01-\\x7f]{1,10}"
        };
        let pointer_token = if braced { "[^}]{0,6}" } else { ".{0,6}" };
        let header = "[-!#$%&'*+.^_`|~0-9A-Za-z]{1,12}";
        let pointer = prop::collection::vec(pointer_token, 0..4).prop_map(|tokens| {
            let mut out = "#".to_owned();
            for token in tokens {
                out.push('/');
                out.push_str(&escape_pointer_token(&token));
            }
            out
        });
        let dotted = prop::collection::vec("[A-Za-z0-9_$@!é-]{1,8}", 1..4)
            .prop_map(|segments| format!(".{}", segments.join(".")));
        let body = prop_oneof![Just(String::new()), pointer, dotted]
            .prop_map(|rest| format!("body{rest}"));
        let request_source = prop_oneof![
            header.prop_map(|h| format!("header.{h}")),
            name.prop_map(|n| format!("query.{n}")),
            name.prop_map(|n| format!("path.{n}")),
            body.clone(),
        ];
        let response_source = prop_oneof![header.prop_map(|h| format!("header.{h}")), body];
        prop_oneof![
            select(vec!["$url", "$method", "$statusCode", "$callback_url"]).prop_map(String::from),
            request_source.prop_map(|s| format!("$request.{s}")),
            response_source.prop_map(|s| format!("$response.{s}")),
        ]
    }

    fn braced_template() -> impl Strategy<Value = String> {
        let first = "([^{}$][^{}]{0,8})?";
        let rest = prop::collection::vec((expression(true), "[^{}]{0,8}"), 0..4);
        (first, rest).prop_map(|(first, rest)| {
            let mut out = first;
            for (expr, literal) in rest {
                out.push('{');
                out.push_str(&expr);
                out.push('}');
                out.push_str(&literal);
            }
            out
        })
    }

    fn percent_decode(text: &str) -> Vec<u8> {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (bytes[i], hex) {
                (b'%', Some(byte)) => {
                    out.push(byte);
                    i += 3;
                }
                (byte, _) => {
                    out.push(byte);
                    i += 1;
                }
            }
        }
        out
    }

    /// Anything that parses prints back exactly as it was written.
    fn check_round_trip(input: &str) -> Result<(), TestCaseError> {
        if let Ok(parsed) = Template::parse(input) {
            prop_assert_eq!(parsed.to_string(), input);
            prop_assert_eq!(Template::parse(&parsed.to_string()).ok(), Some(parsed));
        }
        if let Ok(parsed) = RuntimeExpr::parse(input) {
            prop_assert_eq!(parsed.to_string(), input);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parser_never_panics_on_any_text(input in any::<String>()) {
            check_round_trip(&input)?;
        }

        #[test]
        fn parser_never_panics_on_grammar_pieces(input in grammar_soup()) {
            check_round_trip(&input)?;
            if let Ok(parsed) = Template::parse(&input) {
                let request = RequestContext::new("POST", "http://api.example.com/x?q=1")
                    .with_body(json!({"x": "é", "request": [1], "": null}));
                let response = ResponseContext::new(200).with_body(json!("x"));
                let _ = parsed.resolve_url(&request, Some(&response));
                let _ = parsed.lint();
            }
        }

        #[test]
        fn errors_point_inside_the_input(input in grammar_soup()) {
            if let Err(err) = Template::parse(&input) {
                prop_assert!(err.byte_offset() <= input.len());
                prop_assert!(input.is_char_boundary(err.byte_offset()));
                prop_assert!(!err.expected().is_empty());
            }
        }

        #[test]
        fn generated_templates_print_and_reparse_equal(input in braced_template()) {
            let parsed = Template::parse(&input);
            prop_assert!(parsed.is_ok(), "{:?}: {:?}", input, parsed.err().map(|e| e.to_string()));
            let parsed = parsed.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(parsed.to_string(), input.clone());
            prop_assert_eq!(Template::parse(&parsed.to_string()).ok(), Some(parsed.clone()));
            prop_assert_eq!(parsed.to_spec().lint(), vec![]);
            prop_assert_eq!(
                Template::parse(&parsed.to_spec().to_string()).ok(),
                Some(parsed.to_spec())
            );
        }

        #[test]
        fn generated_bare_expressions_print_and_reparse_equal(input in expression(false)) {
            let parsed = RuntimeExpr::parse(&input);
            prop_assert!(parsed.is_ok(), "{:?}: {:?}", input, parsed.err().map(|e| e.to_string()));
            let parsed = parsed.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(parsed.to_string(), input.clone());
            let as_template = Template::parse(&input).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(as_template.is_bare());
            prop_assert_eq!(as_template.to_string(), input);
        }

        #[test]
        fn values_never_change_the_url_structure(value in any::<String>()) {
            let request = RequestContext::new("POST", "/").with_body(json!({"v": value}));
            let parsed = template("https://h.example/base/{$request.body#/v}/tail?x={$request.body#/v}");
            match parsed.resolve_url(&request, None) {
                Ok(url) => {
                    prop_assert_eq!(url.host_str(), Some("h.example"));
                    let segments: Vec<&str> = url.path_segments().map(Iterator::collect).unwrap_or_default();
                    prop_assert_eq!(segments.len(), 3);
                    prop_assert_eq!(segments[0], "base");
                    prop_assert_eq!(percent_decode(segments[1]), value.as_bytes().to_vec());
                    prop_assert_eq!(segments[2], "tail");
                    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
                    prop_assert_eq!(pairs, vec![("x".to_owned(), value.clone())]);
                    prop_assert_eq!(url.fragment(), None);
                }
                Err(err) => {
                    prop_assert!(err.is_unsafe_value(), "{}", err);
                    prop_assert!(value == "." || value == "..");
                }
            }
        }
    }
}
