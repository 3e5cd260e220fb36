//! The bulk operation parser: every malformed shape is refused before anything runs.

use super::*;

fn reason(body: Value) -> (ErrorCode, Value) {
    let e = parse(Some(&body)).unwrap_err();
    (e.code, e.data.unwrap_or(Value::Null))
}

fn one(op: Value) -> (ErrorCode, Value) {
    reason(json!({ "operations": [op] }))
}

#[test]
fn body_shapes() {
    assert_eq!(
        parse(None).unwrap_err().code,
        ErrorCode::ValidationFieldMissing
    );
    assert_eq!(reason(json!([])).0, ErrorCode::ValidationBodyNotObject);
    assert_eq!(reason(json!({})).0, ErrorCode::ValidationFieldMissing);
    assert_eq!(
        reason(json!({"operations": {}})).0,
        ErrorCode::ValidationFieldInvalid
    );
    let (code, data) = reason(json!({"operations": []}));
    assert_eq!(code, ErrorCode::ValidationFieldInvalid);
    assert_eq!(data["count"], 0);
    let many: Vec<Value> = (0..1001)
        .map(|_| json!({"operation":"count","model":"m"}))
        .collect();
    assert_eq!(
        reason(json!({ "operations": many })).0,
        ErrorCode::ValidationFieldInvalid
    );
    let max: Vec<Value> = (0..1000)
        .map(|_| json!({"operation":"count","model":"m"}))
        .collect();
    assert_eq!(
        parse(Some(&json!({ "operations": max }))).unwrap().len(),
        1000
    );
}

#[test]
fn every_name_parses() {
    let ops = json!({"operations":[
        {"operation":"select","model":"m"},
        {"operation":"select-all","model":"m","filter":{"where":{"a":1},"limit":5,"select":["a"]}},
        {"operation":"select-one","model":"m","id":"x"},
        {"operation":"select-404","model":"m","filter":{"a":1}},
        {"operation":"count","model":"m","filter":{"a":1,"trashed":"include"}},
        {"operation":"aggregate","model":"m","aggregate":{"n":{"$count":"*"}},"groupBy":["a"]},
        {"operation":"create","model":"m","data":{"a":1}},
        {"operation":"create-one","model":"m","data":{"a":1}},
        {"operation":"create-all","model":"m","data":[{"a":1}]},
        {"operation":"update","model":"m","id":"x","data":{"a":2}},
        {"operation":"update-one","model":"m","id":"x","data":{}},
        {"operation":"update-404","model":"m","id":"x","data":{}},
        {"operation":"update-all","model":"m","data":[{"id":"x","a":1}]},
        {"operation":"update-any","model":"m","filter":{"where":{"a":1}},"data":{"a":2}},
        {"operation":"delete","model":"m","id":"x"},
        {"operation":"delete-one","model":"m","id":"x"},
        {"operation":"delete-404","model":"m","id":"x"},
        {"operation":"delete-all","model":"m","data":[{"id":"x"},"y"]},
        {"operation":"delete-any","model":"m","filter":{"a":1}},
        {"operation":"upsert","model":"m","data":{"id":"x"}},
        {"operation":"upsert-one","model":"m","data":{}},
        {"operation":"upsert-all","model":"m","data":[]}
    ]});
    let ops = parse(Some(&ops)).unwrap();
    assert_eq!(ops.len(), 22);
    assert_eq!(ops[1].filter.as_ref().unwrap().limit, 5);
    assert_eq!(ops[3].filter.as_ref().unwrap().r#where, json!({"a":1}));
    assert_eq!(ops[18].kind, Kind::DeleteAny);
    assert_eq!(
        ops[5].aggregate.as_ref().unwrap(),
        &json!({"aggregate":{"n":{"$count":"*"}},"groupBy":["a"]})
    );
}

#[test]
fn nulls_are_absent() {
    let ops = parse(Some(&json!({"operations":[
        {"operation":"select","model":"m","filter":null,"id":null,"data":null,"where":null},
        {"operation":"select","model":"m","filter":{"limit":null,"count":null,"state":null}}
    ]})))
    .unwrap();
    assert!(ops[0].filter.is_none());
    let f = ops[1].filter.as_ref().unwrap();
    assert_eq!(f.r#where, json!({"state": null}));
    assert_eq!(f.limit, 1000);
    assert!(ops[0].echo.contains("\"where\":null"));
}

#[test]
fn malformed_operations() {
    let cases = [
        (json!("select"), "not_an_object"),
        (json!({"model":"m"}), "missing_key"),
        (json!({"operation":7,"model":"m"}), "invalid_key"),
        (
            json!({"operation":"selekt","model":"m"}),
            "unknown_operation",
        ),
        (json!({"operation":"select","model":5}), "invalid_key"),
        (json!({"operation":"select"}), "missing_key"),
        (
            json!({"operation":"select","model":"m","where":{"a":1}}),
            "unexpected_key",
        ),
        (
            json!({"operation":"create-all","model":"m","data":[{}],"filter":{}}),
            "unexpected_key",
        ),
        (
            json!({"operation":"update-all","model":"m","data":[],"filter":{"a":1}}),
            "unexpected_key",
        ),
        (
            json!({"operation":"delete-all","model":"m","data":[],"filter":{"a":1}}),
            "unexpected_key",
        ),
        (
            json!({"operation":"delete","model":"m","id":"x","data":{}}),
            "unexpected_key",
        ),
        (json!({"operation":"create","model":"m"}), "missing_key"),
        (
            json!({"operation":"create","model":"m","data":[{}]}),
            "data_not_object",
        ),
        (
            json!({"operation":"create-all","model":"m","data":{}}),
            "data_not_array",
        ),
        (
            json!({"operation":"create-all","model":"m","data":[{},3]}),
            "data_item_invalid",
        ),
        (
            json!({"operation":"delete-all","model":"m","data":[{"x":1}]}),
            "data_item_invalid",
        ),
        (
            json!({"operation":"update","model":"m","data":{}}),
            "missing_key",
        ),
        (
            json!({"operation":"update","model":"m","id":5,"data":{}}),
            "invalid_key",
        ),
        (
            json!({"operation":"update-any","model":"m","data":{}}),
            "missing_key",
        ),
        (json!({"operation":"delete-any","model":"m"}), "missing_key"),
        (json!({"operation":"select-one","model":"m"}), "missing_key"),
        (
            json!({"operation":"select-one","model":"m","id":"x","filter":{}}),
            "id_and_filter",
        ),
        (
            json!({"operation":"select","model":"m","filter":[1]}),
            "filter_not_object",
        ),
        (
            json!({"operation":"select","model":"m","filter":{"count":true}}),
            "filter_option_unsupported",
        ),
        (
            json!({"operation":"count","model":"m","filter":{"limit":5}}),
            "filter_option_unsupported",
        ),
        (
            json!({"operation":"delete-any","model":"m","filter":{"a":1,"limit":1}}),
            "filter_option_unsupported",
        ),
        (
            json!({"operation":"update-any","model":"m","filter":{"order":"a"},"data":{}}),
            "filter_option_unsupported",
        ),
        (json!({"operation":"aggregate","model":"m"}), "missing_key"),
        (
            json!({"operation":"aggregate","model":"m","aggregate":{},"where":{},"filter":{}}),
            "where_and_filter",
        ),
    ];
    for (op, want) in cases {
        let (code, data) = one(op.clone());
        assert_eq!(code, ErrorCode::ValidationOperationInvalid, "{op}");
        assert_eq!(data["reason"], want, "{op}");
        assert_eq!(data["operation_index"], 0, "{op}");
    }
}

#[test]
fn first_bad_operation_is_named() {
    let (code, data) = reason(json!({"operations":[
        {"operation":"count","model":"m"},
        {"operation":"count","model":"m"},
        {"operation":"nope","model":"m"}
    ]}));
    assert_eq!(code, ErrorCode::ValidationOperationInvalid);
    assert_eq!(data["operation_index"], 2);
    assert_eq!(data["operation"], "nope");
}

#[test]
fn filter_errors_carry_the_index() {
    let (code, data) = reason(json!({"operations":[
        {"operation":"count","model":"m"},
        {"operation":"select","model":"m","filter":{"limit":10001}}
    ]}));
    assert_eq!(code, ErrorCode::FilterInvalidLimit);
    assert_eq!(data["operation_index"], 1);
}

#[test]
fn access_is_not_implemented() {
    for name in [
        "access",
        "access-one",
        "access-404",
        "access-all",
        "access-any",
    ] {
        let (code, data) = one(json!({"operation": name, "model": "m", "id": "x", "data": {}}));
        assert_eq!(code, ErrorCode::NotImplemented, "{name}");
        assert_eq!(data["operation"], name);
        assert_eq!(data["operation_index"], 0);
    }
}

#[test]
fn echo_keeps_the_operation_without_result() {
    let ops = parse(Some(&json!({"operations":[
        {"operation":"count","model":"m","note":"x","result":5}
    ]})))
    .unwrap();
    let echo: Value = serde_json::from_str(&ops[0].echo).unwrap();
    assert_eq!(echo, json!({"operation":"count","model":"m","note":"x"}));
}

#[test]
fn index_joins_existing_data() {
    let e = add_index(Error::field_missing("x"), 3);
    assert_eq!(e.data.unwrap(), json!({"field":"x","operation_index":3}));
    let e = add_index(Error::new(ErrorCode::Internal), 1);
    assert_eq!(e.data.unwrap(), json!({"operation_index":1}));
}
