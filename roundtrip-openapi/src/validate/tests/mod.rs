//! One test per pydantic rule, on hand-written schemas. Expected outputs were taken from
//! pydantic 2.13 (`TypeAdapter(...).validate_python(value, from_attributes=True)`, as
//! FastAPI calls it).

use serde_json::{Map, Value, json};

use super::*;

mod formats;

fn validator_with(schema: &Value, definitions: &Value) -> Validator {
    let empty = Map::new();
    let definitions = definitions.as_object().unwrap_or(&empty);
    match Validator::new(schema, definitions) {
        Ok(v) => v,
        Err(e) => panic!("schema did not compile: {e}"),
    }
}

/// Validates `input` at `["body"]`; returns the coerced value and the errors as JSON.
fn check_with(schema: Value, definitions: Value, mut input: Value) -> (Value, Value) {
    let validator = validator_with(&schema, &definitions);
    let mut errors = Vec::new();
    validator.validate(&mut input, &[LocItem::key("body")], &mut errors);
    (input, serde_json::to_value(&errors).unwrap_or_default())
}

fn check(schema: Value, input: Value) -> (Value, Value) {
    check_with(schema, json!({}), input)
}

/// The errors only.
fn errors(schema: Value, input: Value) -> Value {
    check(schema, input).1
}

/// The coerced value, asserting there was no error.
fn coerced(schema: Value, input: Value) -> Value {
    let (value, errors) = check(schema, input);
    assert_eq!(errors, json!([]), "unexpected errors");
    value
}

fn one(error_type: &str, loc: Value, msg: &str, input: Value) -> Value {
    json!([{"type": error_type, "loc": loc, "msg": msg, "input": input}])
}

fn one_ctx(error_type: &str, loc: Value, msg: &str, input: Value, ctx: Value) -> Value {
    json!([{"type": error_type, "loc": loc, "msg": msg, "input": input, "ctx": ctx}])
}

#[test]
fn strings_are_not_coerced_from_numbers() {
    let s = json!({"type": "string"});
    assert_eq!(
        errors(s.clone(), json!(1)),
        one(
            "string_type",
            json!(["body"]),
            "Input should be a valid string",
            json!(1)
        )
    );
    assert_eq!(
        errors(s.clone(), json!(null)),
        one(
            "string_type",
            json!(["body"]),
            "Input should be a valid string",
            json!(null)
        )
    );
    assert_eq!(coerced(s, json!("x")), json!("x"));
}

#[test]
fn integers_coerce_like_pydantic_lax_mode() {
    let i = json!({"type": "integer"});
    assert_eq!(coerced(i.clone(), json!("12")), json!(12));
    assert_eq!(coerced(i.clone(), json!(" 12 ")), json!(12));
    assert_eq!(coerced(i.clone(), json!("1_000")), json!(1000));
    assert_eq!(coerced(i.clone(), json!("12.000")), json!(12));
    assert_eq!(coerced(i.clone(), json!(2.0)), json!(2));
    assert_eq!(coerced(i.clone(), json!(true)), json!(1));
    assert_eq!(
        coerced(i.clone(), json!(18446744073709551615_u64)),
        json!(18446744073709551615_u64)
    );
    assert_eq!(
        errors(i.clone(), json!("abc")),
        one(
            "int_parsing",
            json!(["body"]),
            "Input should be a valid integer, unable to parse string as an integer",
            json!("abc")
        )
    );
    assert_eq!(
        errors(i.clone(), json!(2.5)),
        one(
            "int_from_float",
            json!(["body"]),
            "Input should be a valid integer, got a number with a fractional part",
            json!(2.5)
        )
    );
    assert_eq!(
        errors(i.clone(), json!([1])),
        one(
            "int_type",
            json!(["body"]),
            "Input should be a valid integer",
            json!([1])
        )
    );
    assert_eq!(
        errors(i, json!(1e30)),
        one(
            "int_parsing_size",
            json!(["body"]),
            "Unable to parse input string as an integer, exceeded maximum size",
            json!(1e30)
        )
    );
}

#[test]
fn rust_integer_formats_bound_the_range() {
    let u8_schema = json!({"type": "integer", "format": "uint8", "minimum": 0, "maximum": 255});
    assert_eq!(
        errors(u8_schema, json!("256")),
        one_ctx(
            "less_than_equal",
            json!(["body"]),
            "Input should be less than or equal to 255",
            json!("256"),
            json!({"le": 255})
        )
    );
    let i32_schema = json!({"type": "integer", "format": "int32"});
    assert_eq!(
        errors(i32_schema, json!(-2147483649_i64)),
        one_ctx(
            "greater_than_equal",
            json!(["body"]),
            "Input should be greater than or equal to -2147483648",
            json!(-2147483649_i64),
            json!({"ge": -2147483648_i64})
        )
    );
    // An explicit tighter bound wins over the implied one.
    let bounded = json!({"type": "integer", "format": "uint32", "minimum": 1, "maximum": 10});
    assert_eq!(
        errors(bounded, json!(0)),
        one_ctx(
            "greater_than_equal",
            json!(["body"]),
            "Input should be greater than or equal to 1",
            json!(0),
            json!({"ge": 1})
        )
    );
}

#[test]
fn floats_coerce_from_strings_and_booleans() {
    let f = json!({"type": "number"});
    assert_eq!(coerced(f.clone(), json!("9999")), json!(9999.0));
    assert_eq!(coerced(f.clone(), json!(" 1.5 ")), json!(1.5));
    assert_eq!(coerced(f.clone(), json!(5)), json!(5));
    assert_eq!(coerced(f.clone(), json!(false)), json!(0.0));
    assert_eq!(
        errors(f.clone(), json!("1.5.5")),
        one(
            "float_parsing",
            json!(["body"]),
            "Input should be a valid number, unable to parse string as a number",
            json!("1.5.5")
        )
    );
    assert_eq!(
        errors(f.clone(), json!({})),
        one(
            "float_type",
            json!(["body"]),
            "Input should be a valid number",
            json!({})
        )
    );
    assert_eq!(
        errors(f, json!("inf")),
        one(
            "finite_number",
            json!(["body"]),
            "Input should be a finite number",
            json!("inf")
        )
    );
}

#[test]
fn booleans_accept_pydantic_words_and_zero_one() {
    let b = json!({"type": "boolean"});
    for (input, out) in [
        (json!("yes"), true),
        (json!("OFF"), false),
        (json!("t"), true),
        (json!(1), true),
        (json!(0.0), false),
    ] {
        assert_eq!(coerced(b.clone(), input), json!(out));
    }
    assert_eq!(
        errors(b.clone(), json!("maybe")),
        one(
            "bool_parsing",
            json!(["body"]),
            "Input should be a valid boolean, unable to interpret input",
            json!("maybe")
        )
    );
    assert_eq!(
        errors(b.clone(), json!(2)),
        one(
            "bool_parsing",
            json!(["body"]),
            "Input should be a valid boolean, unable to interpret input",
            json!(2)
        )
    );
    assert_eq!(
        errors(b.clone(), json!(0.5)),
        one(
            "bool_type",
            json!(["body"]),
            "Input should be a valid boolean",
            json!(0.5)
        )
    );
    assert_eq!(
        errors(b, json!(null)),
        one(
            "bool_type",
            json!(["body"]),
            "Input should be a valid boolean",
            json!(null)
        )
    );
}

#[test]
fn numeric_bounds_render_like_pydantic() {
    // A float field's bound is a float in `ctx` and printed without `.0` in the message.
    let price = json!({"type": "number", "exclusiveMinimum": 0});
    assert_eq!(
        serde_json::to_string(&errors(price, json!(-1))).ok(),
        Some(r#"[{"type":"greater_than","loc":["body"],"msg":"Input should be greater than 0","input":-1,"ctx":{"gt":0.0}}]"#.to_owned())
    );
    let le = json!({"type": "number", "maximum": 1.5});
    assert_eq!(
        errors(le, json!(11)),
        one_ctx(
            "less_than_equal",
            json!(["body"]),
            "Input should be less than or equal to 1.5",
            json!(11),
            json!({"le": 1.5})
        )
    );
    let lt = json!({"type": "integer", "exclusiveMaximum": 1});
    assert_eq!(
        errors(lt, json!(11)),
        one_ctx(
            "less_than",
            json!(["body"]),
            "Input should be less than 1",
            json!(11),
            json!({"lt": 1})
        )
    );
    let big = json!({"type": "number", "exclusiveMinimum": 1e20});
    assert_eq!(
        errors(big, json!(0.1))[0]["msg"],
        json!("Input should be greater than 100000000000000000000")
    );
}

#[test]
fn multiple_of_is_checked_before_bounds() {
    let s = json!({"type": "integer", "minimum": 5, "multipleOf": 3});
    assert_eq!(
        errors(s, json!(4)),
        one_ctx(
            "multiple_of",
            json!(["body"]),
            "Input should be a multiple of 3",
            json!(4),
            json!({"multiple_of": 3})
        )
    );
    let f = json!({"type": "number", "multipleOf": 0.5});
    assert_eq!(
        errors(f.clone(), json!(0.3)),
        one_ctx(
            "multiple_of",
            json!(["body"]),
            "Input should be a multiple of 0.5",
            json!(0.3),
            json!({"multiple_of": 0.5})
        )
    );
    assert_eq!(coerced(f, json!(1.5)), json!(1.5));
}

#[test]
fn string_lengths_count_characters_with_plural_messages() {
    let s = json!({"type": "string", "minLength": 1, "maxLength": 3});
    assert_eq!(
        errors(s.clone(), json!("")),
        one_ctx(
            "string_too_short",
            json!(["body"]),
            "String should have at least 1 character",
            json!(""),
            json!({"min_length": 1})
        )
    );
    assert_eq!(
        errors(s.clone(), json!("abcd")),
        one_ctx(
            "string_too_long",
            json!(["body"]),
            "String should have at most 3 characters",
            json!("abcd"),
            json!({"max_length": 3})
        )
    );
    assert_eq!(coerced(s, json!("ééé")), json!("ééé"));
    let three = json!({"type": "string", "minLength": 3});
    assert_eq!(
        errors(three, json!("ab"))[0]["msg"],
        json!("String should have at least 3 characters")
    );
}

#[test]
fn patterns_search_unanchored() {
    let anchored = json!({"type": "string", "pattern": "^\\d{5}$"});
    assert_eq!(
        serde_json::to_string(&errors(anchored, json!("12"))).ok(),
        Some(r#"[{"type":"string_pattern_mismatch","loc":["body"],"msg":"String should match pattern '^\\d{5}$'","input":"12","ctx":{"pattern":"^\\d{5}$"}}]"#.to_owned())
    );
    let unanchored = json!({"type": "string", "pattern": "\\d"});
    assert_eq!(coerced(unanchored, json!("abc1def")), json!("abc1def"));
}

#[test]
fn lists_check_type_items_then_length() {
    let s = json!({"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 3});
    assert_eq!(
        errors(s.clone(), json!("x")),
        one(
            "list_type",
            json!(["body"]),
            "Input should be a valid list",
            json!("x")
        )
    );
    assert_eq!(coerced(s.clone(), json!(["1", 2])), json!([1, 2]));
    // Item errors hide a short length, and quote positions.
    assert_eq!(
        errors(s.clone(), json!(["x"])),
        one(
            "int_parsing",
            json!(["body", 0]),
            "Input should be a valid integer, unable to parse string as an integer",
            json!("x")
        )
    );
    // The length error quotes the list as received, not as coerced.
    assert_eq!(
        errors(s.clone(), json!(["1"])),
        one_ctx(
            "too_short",
            json!(["body"]),
            "List should have at least 2 items after validation, not 1",
            json!(["1"]),
            json!({"field_type": "List", "min_length": 2, "actual_length": 1})
        )
    );
    // Too long is reported alone, whatever the items.
    assert_eq!(
        errors(s, json!(["x", "y", 3, 4])),
        one_ctx(
            "too_long",
            json!(["body"]),
            "List should have at most 3 items after validation, not 4",
            json!(["x", "y", 3, 4]),
            json!({"field_type": "List", "max_length": 3, "actual_length": 4})
        )
    );
    let one_item = json!({"type": "array", "minItems": 1});
    assert_eq!(
        errors(one_item, json!([])).get(0).map(|e| e["msg"].clone()),
        Some(json!(
            "List should have at least 1 item after validation, not 0"
        ))
    );
}

#[test]
fn tuples_report_missing_positions() {
    let s = json!({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "minItems": 2, "maxItems": 2});
    assert_eq!(
        errors(s.clone(), json!([1])),
        one("missing", json!(["body", 1]), "Field required", json!([1]))
    );
    assert_eq!(
        errors(s.clone(), json!([1, "a", 3])),
        one_ctx(
            "too_long",
            json!(["body"]),
            "Tuple should have at most 2 items after validation, not 3",
            json!([1, "a", 3]),
            json!({"field_type": "Tuple", "max_length": 2, "actual_length": 3})
        )
    );
    assert_eq!(coerced(s, json!(["7", "a"])), json!([7, "a"]));
}

#[test]
fn unique_items_are_enforced() {
    let s = json!({"type": "array", "items": {"type": "integer"}, "uniqueItems": true});
    assert_eq!(
        errors(s.clone(), json!([1, "1"])),
        one(
            "unique_items",
            json!(["body"]),
            "List should have unique items, item 1 is a duplicate",
            json!([1, 1])
        )
    );
    assert_eq!(
        errors(s, json!("x")),
        one(
            "set_type",
            json!(["body"]),
            "Input should be a valid set",
            json!("x")
        )
    );
}

#[test]
fn models_report_fields_in_declaration_order_then_extras() {
    let s = json!({
        "type": "object",
        "properties": {"id": {"type": "string"}, "customer": {"type": "string"}, "total": {"type": "number"}},
        "required": ["id", "customer", "total"],
        "additionalProperties": false
    });
    let out = errors(s.clone(), json!({"zzz": 1, "total": "x", "id": 123}));
    assert_eq!(
        out,
        json!([
            {"type": "string_type", "loc": ["body", "id"], "msg": "Input should be a valid string", "input": 123},
            {"type": "missing", "loc": ["body", "customer"], "msg": "Field required", "input": {"zzz": 1, "total": "x", "id": 123}},
            {"type": "float_parsing", "loc": ["body", "total"], "msg": "Input should be a valid number, unable to parse string as a number", "input": "x"},
            {"type": "extra_forbidden", "loc": ["body", "zzz"], "msg": "Extra inputs are not permitted", "input": 1},
        ])
    );
    // The missing error quotes the object as received, even after siblings coerced.
    let out = errors(s.clone(), json!({"total": "5", "id": "a"}));
    assert_eq!(
        out,
        one(
            "missing",
            json!(["body", "customer"]),
            "Field required",
            json!({"total": "5", "id": "a"})
        )
    );
    assert_eq!(
        errors(s, json!([1, 2])),
        one(
            "model_attributes_type",
            json!(["body"]),
            "Input should be a valid dictionary or object to extract fields from",
            json!([1, 2])
        )
    );
}

#[test]
fn nested_models_give_full_paths_and_model_attributes_type() {
    let defs = json!({
        "Address": {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "string", "pattern": "^\\d{5}$"}}, "required": ["city", "zip"]},
        "User": {"type": "object", "properties": {"username": {"type": "string"}, "address": {"$ref": "#/components/schemas/Address"}}, "required": ["username", "address"]}
    });
    let user = json!({"$ref": "#/components/schemas/User"});
    let (_, out) = check_with(
        user.clone(),
        defs.clone(),
        json!({"username": "bob", "address": {"zip": "12345"}}),
    );
    assert_eq!(
        out,
        one(
            "missing",
            json!(["body", "address", "city"]),
            "Field required",
            json!({"zip": "12345"})
        )
    );
    // FastAPI validates with from_attributes=True: a nested non-object is
    // `model_attributes_type` too (not `model_type`).
    let (_, out) = check_with(user, defs, json!({"username": "bob", "address": "foo"}));
    assert_eq!(
        out,
        one(
            "model_attributes_type",
            json!(["body", "address"]),
            "Input should be a valid dictionary or object to extract fields from",
            json!("foo")
        )
    );
}

#[test]
fn dictionaries_validate_values_under_their_keys() {
    let s =
        json!({"type": "object", "additionalProperties": {"type": "integer"}, "minProperties": 1});
    assert_eq!(
        errors(s.clone(), json!({"a": "x", "b": "y"})),
        json!([
            {"type": "int_parsing", "loc": ["body", "a"], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "x"},
            {"type": "int_parsing", "loc": ["body", "b"], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "y"},
        ])
    );
    assert_eq!(
        errors(s.clone(), json!([1])),
        one(
            "dict_type",
            json!(["body"]),
            "Input should be a valid dictionary",
            json!([1])
        )
    );
    assert_eq!(
        errors(s.clone(), json!({})),
        one_ctx(
            "too_short",
            json!(["body"]),
            "Dictionary should have at least 1 item after validation, not 0",
            json!({}),
            json!({"field_type": "Dictionary", "min_length": 1, "actual_length": 0})
        )
    );
    assert_eq!(coerced(s, json!({"a": "1"})), json!({"a": 1}));
    // schemars' integer-keyed maps.
    let int_keys = json!({"type": "object", "additionalProperties": false, "patternProperties": {"^\\d+$": {"type": "string"}}});
    assert_eq!(
        errors(int_keys, json!({"1": "a", "x": "b"})),
        one(
            "extra_forbidden",
            json!(["body", "x"]),
            "Extra inputs are not permitted",
            json!("b")
        )
    );
}

#[test]
fn enums_list_their_members_python_style() {
    let s = json!({"type": "string", "enum": ["a", "b", "c"]});
    assert_eq!(
        errors(s, json!("d")),
        one_ctx(
            "enum",
            json!(["body"]),
            "Input should be 'a', 'b' or 'c'",
            json!("d"),
            json!({"expected": "'a', 'b' or 'c'"})
        )
    );
    let numbers = json!({"type": "integer", "enum": [1, 2]});
    assert_eq!(coerced(numbers.clone(), json!("2")), json!(2));
    assert_eq!(
        errors(numbers, json!("3")),
        one_ctx(
            "enum",
            json!(["body"]),
            "Input should be 1 or 2",
            json!("3"),
            json!({"expected": "1 or 2"})
        )
    );
    // A documented unit enum is a `oneOf` of `const`s: still one `enum` error.
    let documented = json!({"oneOf": [
        {"type": "string", "const": "Red", "description": "warm"},
        {"type": "string", "const": "Green"}
    ]});
    assert_eq!(
        errors(documented, json!("Blue")),
        one_ctx(
            "enum",
            json!(["body"]),
            "Input should be 'Red' or 'Green'",
            json!("Blue"),
            json!({"expected": "'Red' or 'Green'"})
        )
    );
    let literal = json!({"const": "cat"});
    assert_eq!(
        errors(literal, json!("dog")),
        one_ctx(
            "literal_error",
            json!(["body"]),
            "Input should be 'cat'",
            json!("dog"),
            json!({"expected": "'cat'"})
        )
    );
}

#[test]
fn optional_values_accept_null_and_report_the_inner_error() {
    for s in [
        json!({"type": ["string", "null"], "minLength": 3}),
        json!({"anyOf": [{"type": "string", "minLength": 3}, {"type": "null"}]}),
    ] {
        assert_eq!(coerced(s.clone(), json!(null)), json!(null));
        assert_eq!(
            errors(s, json!("a")),
            one_ctx(
                "string_too_short",
                json!(["body"]),
                "String should have at least 3 characters",
                json!("a"),
                json!({"min_length": 3})
            )
        );
    }
}

#[test]
fn unions_pick_the_exact_type_then_coerce() {
    let s = json!({"anyOf": [{"type": "integer"}, {"type": "string"}]});
    assert_eq!(coerced(s.clone(), json!("5")), json!("5"));
    assert_eq!(coerced(s.clone(), json!(5)), json!(5));
    assert_eq!(coerced(s.clone(), json!(true)), json!(1));
    // Every branch fails: the first exact match is none, so the errors of the
    // best-scoring branch (fewest errors, then first) are reported.
    assert_eq!(
        errors(s, json!([1])),
        one(
            "int_type",
            json!(["body"]),
            "Input should be a valid integer",
            json!([1])
        )
    );
}

#[test]
fn unions_of_models_report_the_branch_the_input_aims_at() {
    // serde's externally tagged enum.
    let s = json!({"oneOf": [
        {"type": "object", "properties": {"Cat": {"type": "object", "properties": {"meows": {"type": "integer"}}, "required": ["meows"]}}, "required": ["Cat"], "additionalProperties": false},
        {"type": "object", "properties": {"Dog": {"type": "object", "properties": {"barks": {"type": "number"}}, "required": ["barks"]}}, "required": ["Dog"], "additionalProperties": false}
    ]});
    assert_eq!(
        errors(s, json!({"Cat": {"meows": "x"}})),
        one(
            "int_parsing",
            json!(["body", "Cat", "meows"]),
            "Input should be a valid integer, unable to parse string as an integer",
            json!("x")
        )
    );
}

#[test]
fn tagged_unions_report_like_pydantic_discriminated_unions() {
    let s = json!({"oneOf": [
        {"type": "object", "properties": {"type": {"type": "string", "const": "cat"}, "meows": {"type": "integer"}}, "required": ["type", "meows"]},
        {"type": "object", "properties": {"type": {"type": "string", "const": "dog"}, "barks": {"type": "number"}}, "required": ["type", "barks"]}
    ]});
    assert_eq!(
        errors(s.clone(), json!({"type": "cat", "meows": "x"})),
        one(
            "int_parsing",
            json!(["body", "cat", "meows"]),
            "Input should be a valid integer, unable to parse string as an integer",
            json!("x")
        )
    );
    assert_eq!(
        errors(s.clone(), json!({"type": "fish"})),
        one_ctx(
            "union_tag_invalid",
            json!(["body"]),
            "Input tag 'fish' found using 'type' does not match any of the expected tags: 'cat', 'dog'",
            json!({"type": "fish"}),
            json!({"discriminator": "'type'", "tag": "fish", "expected_tags": "'cat', 'dog'"})
        )
    );
    assert_eq!(
        errors(s.clone(), json!({})),
        one_ctx(
            "union_tag_not_found",
            json!(["body"]),
            "Unable to extract tag using discriminator 'type'",
            json!({}),
            json!({"discriminator": "'type'"})
        )
    );
    assert_eq!(
        errors(s.clone(), json!(5)),
        one(
            "model_attributes_type",
            json!(["body"]),
            "Input should be a valid dictionary or object to extract fields from",
            json!(5)
        )
    );
    assert_eq!(
        coerced(s, json!({"type": "dog", "barks": "2"})),
        json!({"type": "dog", "barks": 2.0})
    );
}

#[test]
fn recursive_schemas_compile_and_validate() {
    let defs = json!({
        "Tree": {"type": "object", "properties": {
            "value": {"type": "integer"},
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Tree"}}
        }, "required": ["value"]}
    });
    let tree = json!({"$ref": "#/components/schemas/Tree"});
    let input = json!({"value": 1, "children": [{"value": "2"}, {"value": "x", "children": []}]});
    let (value, out) = check_with(tree, defs, input);
    assert_eq!(
        out,
        one(
            "int_parsing",
            json!(["body", "children", 1, "value"]),
            "Input should be a valid integer, unable to parse string as an integer",
            json!("x")
        )
    );
    assert_eq!(value["children"][0]["value"], json!(2));
}

#[test]
fn compile_errors_name_the_problem() {
    let empty = Map::new();
    let err = Validator::new(&json!({"$ref": "#/components/schemas/Nope"}), &empty).err();
    assert_eq!(
        err,
        Some(SchemaError::UnresolvedRef {
            reference: "#/components/schemas/Nope".to_owned()
        })
    );
    let err = Validator::new(&json!({"type": "string", "pattern": "(?=a)"}), &empty).err();
    assert!(
        matches!(err, Some(SchemaError::InvalidPattern { .. })),
        "{err:?}"
    );
    let defs =
        json!({"A": {"$ref": "#/components/schemas/B"}, "B": {"$ref": "#/components/schemas/A"}});
    let err = Validator::new(
        &json!({"$ref": "#/components/schemas/A"}),
        defs.as_object().unwrap_or(&empty),
    )
    .err();
    assert!(matches!(err, Some(SchemaError::RefCycle { .. })), "{err:?}");
}

#[test]
fn not_const_zero_rejects_zero() {
    let s = json!({"type": "integer", "format": "int32", "not": {"const": 0}});
    assert_eq!(
        errors(s.clone(), json!("0")),
        one("not", json!(["body"]), "Input should not be 0", json!("0"))
    );
    assert_eq!(coerced(s, json!("5")), json!(5));
}

#[test]
fn params_report_missing_with_null_input_and_list_info() {
    let s = json!({
        "type": "object",
        "properties": {
            "q": {"type": ["string", "null"], "minLength": 3},
            "tag": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
            "limit": {"type": "integer", "maximum": 100},
            "x-request-id": {"type": "string"}
        },
        "required": ["x-request-id"]
    });
    let v = validator_with(&s, &json!({}));
    let names: Vec<(&str, bool, bool)> = v
        .params()
        .iter()
        .map(|p| (p.name(), p.is_list(), p.is_required()))
        .collect();
    assert_eq!(
        names,
        [
            ("q", false, false),
            ("tag", true, false),
            ("limit", false, false),
            ("x-request-id", false, true)
        ]
    );
    let mut value = json!({"limit": "500", "tag": ["a", "b"]});
    let mut out = Vec::new();
    v.validate_params(&mut value, &[LocItem::key("header")], &mut out);
    assert_eq!(
        serde_json::to_value(&out).unwrap_or_default(),
        json!([
            {"type": "less_than_equal", "loc": ["header", "limit"], "msg": "Input should be less than or equal to 100", "input": "500", "ctx": {"le": 100}},
            {"type": "missing", "loc": ["header", "x-request-id"], "msg": "Field required", "input": null},
        ])
    );
}

#[test]
fn serde_covers_only_shape_and_implied_bounds() {
    let covers = |schema: Value| validator_with(&schema, &json!({})).serde_covers();
    assert!(covers(
        json!({"type": "object", "properties": {"a": {"type": "integer", "format": "uint8", "minimum": 0, "maximum": 255}}, "required": ["a"], "title": "T"})
    ));
    assert!(covers(
        json!({"type": ["string", "null"], "description": "d", "default": null})
    ));
    assert!(covers(json!({"type": "string", "enum": ["a", "b"]})));
    assert!(covers(
        json!({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "minItems": 2, "maxItems": 2})
    ));
    assert!(covers(
        json!({"type": "object", "properties": {}, "additionalProperties": false})
    ));
    assert!(covers(
        json!({"type": "integer", "format": "int32", "not": {"const": 0}})
    ));
    assert!(covers(
        json!({"type": ["string", "null"], "format": "uri", "minLength": 1, "maxLength": 2083, "x-rt-serde-enforced": true})
    ));
    assert!(!covers(
        json!({"type": "integer", "format": "uint32", "minimum": 0, "maximum": 10})
    ));
    assert!(!covers(json!({"type": "number", "exclusiveMinimum": 0})));
    assert!(!covers(json!({"type": "string", "minLength": 1})));
    assert!(!covers(json!({"type": "string", "format": "date-time"})));
    assert!(!covers(json!({"type": "array", "uniqueItems": true})));
    assert!(!covers(
        json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "x"}}})
    ));
    let defs = json!({"Inner": {"type": "string", "maxLength": 3}});
    assert!(!validator_with(&json!({"$ref": "#/components/schemas/Inner"}), &defs).serde_covers());
}

#[test]
fn errors_carry_the_caller_prefix() {
    let v = validator_with(&json!({"type": "integer"}), &json!({}));
    let mut value = json!("x");
    let mut out = Vec::new();
    v.validate(
        &mut value,
        &[LocItem::key("query"), LocItem::key("n")],
        &mut out,
    );
    assert_eq!(
        out.first().map(|e| e.loc.clone()),
        Some(vec![LocItem::key("query"), LocItem::key("n")])
    );
}

#[test]
fn nested_unions_stay_linear_on_failing_input() {
    // Both array branches recurse: trying each at every level would take 2^100 steps.
    let defs = json!({"Expr": {"anyOf": [
        {"type": "array", "items": {"$ref": "#/components/schemas/Expr"}},
        {"type": "array", "items": {"$ref": "#/components/schemas/Expr"}, "maxItems": 5},
        {"type": "integer"}
    ]}});
    let mut input = json!("x");
    for _ in 0..100 {
        input = Value::Array(vec![input]);
    }
    let started = std::time::Instant::now();
    let (_, out) = check_with(json!({"$ref": "#/components/schemas/Expr"}), defs, input);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    // One error, at the leaf: the first of the equally bad branches (an array) speaks.
    assert_eq!(out.as_array().map(Vec::len), Some(1));
    assert_eq!(out[0]["loc"].as_array().map(Vec::len), Some(101));
    assert_eq!(out[0]["type"], json!("list_type"));
}

#[test]
fn validators_are_shared_across_threads() {
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<Validator>();
}
