//! Parser tests: each operator's AST, the empty-array table, limits and error paths.

use super::*;
use crate::model::FieldDef;
use crate::{Error, ErrorCode};
use serde_json::json;

pub fn field(model: &str, name: &str, ty: FieldType) -> FieldDef {
    FieldDef::blank(model, name, ty)
}

pub fn model(fields: Vec<FieldDef>) -> ModelDef {
    ModelDef::active("orders", fields)
}

pub fn orders() -> ModelDef {
    model(vec![
        field("orders", "age", FieldType::Integer),
        field("orders", "at", FieldType::Timestamp),
        field("orders", "nums", FieldType::IntegerArray),
        field("orders", "state", FieldType::Text),
        field("orders", "total", FieldType::Decimal),
        field("orders", "meta", FieldType::Jsonb),
        field("orders", "tags", FieldType::TextArray),
    ])
}

#[test]
fn equality_subset() {
    let m = orders();
    let f = parse(&m, &json!({"state": "new", "total": null}), "where").unwrap();
    match f {
        Filter::And(v) => {
            assert!(matches!(&v[0], Filter::Eq { value, .. } if value == &json!("new")));
            assert!(matches!(&v[1], Filter::IsNull { .. }));
        }
        other => panic!("{other:?}"),
    }
    let f = parse(&m, &json!({"state": ["a", null]}), "where").unwrap();
    assert!(matches!(f, Filter::In { or_null: true, .. }));
    let f = parse(&m, &json!({"tags": ["a"]}), "where").unwrap();
    assert!(matches!(f, Filter::Eq { .. }));
    let f = parse(&m, &json!({"meta": {"a": 1}}), "where").unwrap();
    assert!(matches!(f, Filter::Contains { .. }));
    let f = parse(
        &m,
        &json!({"$and": [{"state": "a"}, {"state": {"$eq": "b"}}]}),
        "where",
    )
    .unwrap();
    assert!(matches!(f, Filter::And(ref v) if v.len() == 2));
    assert_eq!(parse(&m, &json!({}), "where").unwrap(), Filter::True);
    assert!(parse(
        &m,
        &json!({"id": "0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10"}),
        "where"
    )
    .is_ok());
}

#[test]
fn errors_carry_paths() {
    let m = orders();
    let e = parse(&m, &json!({"tags": {"$elemMatch": 1}}), "where").unwrap_err();
    assert_eq!(e.code, ErrorCode::FilterUnsupportedOperator);
    assert_eq!(e.data.unwrap()["path"], "where.tags.$elemMatch");
    let e = parse(&m, &json!({"$xor": [{"state": "a"}]}), "where").unwrap_err();
    assert_eq!(e.code, ErrorCode::FilterUnsupportedOperator);
    let e = parse(&m, &json!({"nope": 1}), "where").unwrap_err();
    assert_eq!(e.code, ErrorCode::FilterUnknownField);
    let e = parse(&m, &json!({"total": "abc"}), "where").unwrap_err();
    assert_eq!(e.code, ErrorCode::FilterInvalidValue);
    let e = parse(&m, &json!({"$and": []}), "where").unwrap_err();
    assert_eq!(e.code, ErrorCode::FilterEmptyLogicalArray);
    let e = parse(&m, &json!({"state": {"$eq": 1, "x": 2}}), "where").unwrap_err();
    assert_eq!(e.code, ErrorCode::FilterInvalid);
    let e = parse(&m, &json!({"state.x": 1}), "where").unwrap_err();
    assert_eq!(e.code, ErrorCode::FilterInvalidPath);
    assert_eq!(e.data.unwrap()["path"], "where[\"state.x\"]");
    let e = parse(&m, &json!([1]), "where").unwrap_err();
    assert_eq!(e.code, ErrorCode::FilterInvalid);
    let e = parse_param(&m, "{bad").unwrap_err();
    assert_eq!(e.code, ErrorCode::FilterInvalid);
}

fn p(v: Value) -> Filter {
    parse(&orders(), &v, "where").unwrap()
}

fn e(v: Value) -> (ErrorCode, Value) {
    let e = parse(&orders(), &v, "where").unwrap_err();
    (e.code, e.data.unwrap_or(Value::Null))
}

fn col(name: &str) -> Column {
    column(&orders(), name).unwrap()
}

#[test]
fn comparison_operators() {
    assert_eq!(
        p(json!({"age": {"$gte": 18, "$lt": 65}})),
        Filter::And(vec![
            Filter::Cmp {
                column: col("age"),
                op: CmpOp::Gte,
                value: json!(18)
            },
            Filter::Cmp {
                column: col("age"),
                op: CmpOp::Lt,
                value: json!(65)
            },
        ])
    );
    assert_eq!(
        p(json!({"age": {"$ne": null}})),
        Filter::NotNull { column: col("age") }
    );
    assert_eq!(
        p(json!({"age": {"$neq": 3}})),
        Filter::Cmp {
            column: col("age"),
            op: CmpOp::Ne,
            value: json!(3)
        }
    );
    assert_eq!(
        p(json!({"age": {"$eq": null}})),
        Filter::IsNull { column: col("age") }
    );
    assert_eq!(
        p(json!({"at": {"$gt": "2026-05-06T16:03:21+02:00"}})),
        Filter::Cmp {
            column: col("at"),
            op: CmpOp::Gt,
            value: json!("2026-05-06T14:03:21.000000Z")
        }
    );
    assert_eq!(
        p(json!({"total": {"$between": [1, "2.5"]}})),
        Filter::Between {
            column: col("total"),
            low: json!(1),
            high: json!("2.5")
        }
    );
    let (c, d) = e(json!({"$or": [{"state": "a"}, {"age": {"$between": []}}]}));
    assert_eq!(c, ErrorCode::FilterInvalidValue);
    assert_eq!(d["path"], "where.$or[1].age.$between");
    let (c, _) = e(json!({"age": {"$between": [1, null]}}));
    assert_eq!(c, ErrorCode::FilterInvalidValue);
    let (c, d) = e(json!({"age": {"$gt": null}}));
    assert_eq!(
        (c, d["path"].clone()),
        (ErrorCode::FilterInvalidValue, json!("where.age.$gt"))
    );
    let (c, _) = e(json!({"tags": {"$gt": "a"}}));
    assert_eq!(c, ErrorCode::FilterInvalidValue);
    let (c, _) = e(json!({"age": {"$gt": 2147483648i64}}));
    assert_eq!(c, ErrorCode::FilterInvalidValue);
    let (c, _) = e(json!({"at": {"$gt": "yesterday"}}));
    assert_eq!(c, ErrorCode::FilterInvalidValue);
}

#[test]
fn empty_array_table() {
    assert_eq!(p(json!({"age": []})), Filter::False);
    assert_eq!(p(json!({"age": {"$in": []}})), Filter::False);
    assert_eq!(p(json!({"age": {"$nin": []}})), Filter::True);
    assert_eq!(p(json!({"tags": {"$any": []}})), Filter::False);
    assert_eq!(p(json!({"tags": {"$all": []}})), Filter::True);
    assert_eq!(p(json!({"tags": {"$nany": []}})), Filter::True);
    assert_eq!(p(json!({"tags": {"$nall": []}})), Filter::False);
    assert_eq!(p(json!({"meta.x": {"$all": []}})), Filter::True);
    assert_eq!(
        p(json!({"tags": []})),
        Filter::Eq {
            column: col("tags"),
            value: json!([])
        }
    );
    assert_eq!(
        p(json!({"age": {"$nin": [1, null]}})),
        Filter::NotIn {
            column: col("age"),
            values: vec![json!(1)],
            or_null: true
        }
    );
    assert_eq!(
        p(json!({"age": {"$in": [null]}})),
        Filter::In {
            column: col("age"),
            values: vec![],
            or_null: true
        }
    );
    for op in ["$and", "$or", "$not", "$nand", "$nor"] {
        let (c, d) = e(json!({ op: [] }));
        assert_eq!(c, ErrorCode::FilterEmptyLogicalArray, "{op}");
        assert_eq!(d["path"], format!("where.{op}"));
    }
}

#[test]
fn text_and_array_operators() {
    let t = |op: &str, x: TextOp| {
        assert_eq!(
            p(json!({"state": { op: "a%" }})),
            Filter::Text {
                column: col("state"),
                op: x,
                pattern: "a%".into()
            }
        );
    };
    t("$like", TextOp::Like);
    t("$nlike", TextOp::NotLike);
    t("$ilike", TextOp::ILike);
    t("$nilike", TextOp::NotILike);
    t("$regex", TextOp::Regex);
    t("$nregex", TextOp::NotRegex);
    t("$find", TextOp::Find);
    t("$text", TextOp::Find);
    t("$search", TextOp::Search);
    let (c, _) = e(json!({"state": {"$search": " "}}));
    assert_eq!(c, ErrorCode::FilterInvalidValue);
    let (c, _) = e(json!({"age": {"$search": "x"}}));
    assert_eq!(c, ErrorCode::FilterInvalidValue);
    let (c, _) = e(json!({"state": {"$regex": "a".repeat(1001)}}));
    assert_eq!(c, ErrorCode::FilterInvalidValue);
    let (c, _) = e(json!({"state": {"$like": 5}}));
    assert_eq!(c, ErrorCode::FilterInvalidValue);
    assert_eq!(
        p(json!({"nums": {"$any": [1, 2]}})),
        Filter::Array {
            column: col("nums"),
            op: ArrayOp::Any,
            values: vec![json!(1), json!(2)]
        }
    );
    let (c, d) = e(json!({"nums": {"$all": [1, "x"]}}));
    assert_eq!(
        (c, d["path"].clone()),
        (ErrorCode::FilterInvalidValue, json!("where.nums.$all[1]"))
    );
    let (c, _) = e(json!({"age": {"$any": [1]}}));
    assert_eq!(c, ErrorCode::FilterInvalidValue);
    assert_eq!(
        p(json!({"tags": {"$size": 2}})),
        Filter::Size {
            column: col("tags"),
            op: CmpOp::Eq,
            value: 2
        }
    );
    assert_eq!(
        p(json!({"tags": {"$size": {"$between": [1, 3]}}})),
        Filter::And(vec![
            Filter::Size {
                column: col("tags"),
                op: CmpOp::Gte,
                value: 1
            },
            Filter::Size {
                column: col("tags"),
                op: CmpOp::Lte,
                value: 3
            },
        ])
    );
    assert_eq!(
        p(json!({"age": {"$exists": true}})),
        Filter::NotNull { column: col("age") }
    );
    assert_eq!(
        p(json!({"age": {"$null": true}})),
        Filter::IsNull { column: col("age") }
    );
    let (c, _) = e(json!({"age": {"$null": "yes"}}));
    assert_eq!(c, ErrorCode::FilterInvalidValue);
}

#[test]
fn logical_and_not() {
    let a = Filter::Eq {
        column: col("state"),
        value: json!("a"),
    };
    let b = Filter::Eq {
        column: col("state"),
        value: json!("b"),
    };
    assert_eq!(
        p(json!({"$or": [{"state": "a"}, {"state": "b"}]})),
        Filter::Or(vec![a.clone(), b.clone()])
    );
    assert_eq!(
        p(json!({"$nor": [{"state": "a"}, {"state": "b"}]})),
        Filter::Not(Box::new(Filter::Or(vec![a.clone(), b.clone()])))
    );
    assert_eq!(
        p(json!({"$nand": [{"state": "a"}, {"state": "b"}]})),
        Filter::Not(Box::new(Filter::And(vec![a.clone(), b.clone()])))
    );
    assert_eq!(
        p(json!({"$not": {"state": "a"}})),
        Filter::Not(Box::new(a.clone()))
    );
    assert_eq!(
        p(json!({"age": {"$not": {"$gt": 5}}})),
        Filter::Not(Box::new(Filter::Cmp {
            column: col("age"),
            op: CmpOp::Gt,
            value: json!(5)
        }))
    );
    let mut deep = json!({"state": "a"});
    for _ in 0..40 {
        deep = json!({ "$and": [deep] });
    }
    assert_eq!(e(deep).0, ErrorCode::FilterTooComplex);
    let many: Vec<Value> = (0..1001).map(|_| json!({"state": "a"})).collect();
    assert_eq!(e(json!({ "$or": many })).0, ErrorCode::FilterTooComplex);
    let big: Vec<i64> = (0..10_001).collect();
    assert_eq!(
        e(json!({"age": {"$in": big}})).0,
        ErrorCode::FilterTooComplex
    );
    let (c, d) = e(json!({"$or": {"state": "a"}}));
    assert_eq!(
        (c, d["path"].clone()),
        (ErrorCode::FilterInvalid, json!("where.$or"))
    );
}

#[test]
fn jsonb_paths() {
    let m = col("meta");
    let j = |path: &[&str], test: JsonTest| Filter::Json {
        column: m.clone(),
        path: path.iter().map(|s| s.to_string()).collect(),
        test,
    };
    assert_eq!(
        p(json!({"meta.theme": "dark"})),
        j(&["theme"], JsonTest::Eq(json!("dark")))
    );
    assert_eq!(
        p(json!({"meta.tags.0": "x"})),
        j(&["tags", "0"], JsonTest::Eq(json!("x")))
    );
    assert_eq!(p(json!({"meta.a": null})), j(&["a"], JsonTest::Null));
    assert_eq!(
        p(json!({"meta.size": {"$gt": 3}})),
        j(
            &["size"],
            JsonTest::Cmp {
                op: CmpOp::Gt,
                value: json!(3)
            }
        )
    );
    assert_eq!(
        p(json!({"meta.a": {"$exists": false}})),
        j(&["a"], JsonTest::Exists(false))
    );
    assert_eq!(
        p(json!({"meta.a": {"$null": false}})),
        j(&["a"], JsonTest::NotNull)
    );
    assert_eq!(
        p(json!({"meta.a": {"b": 1}})),
        j(&["a"], JsonTest::Contains(json!({"b": 1})))
    );
    let (c, d) = e(json!({"meta.size": {"$gt": true}}));
    assert_eq!(
        (c, d["path"].clone()),
        (
            ErrorCode::FilterInvalidValue,
            json!("where[\"meta.size\"].$gt")
        )
    );
    assert_eq!(e(json!({"meta.a b": 1})).0, ErrorCode::FilterInvalidPath);
    assert_eq!(e(json!({"meta.": 1})).0, ErrorCode::FilterInvalidPath);
    assert_eq!(
        e(json!({"meta.1.2.3.4.5.6.7.8.9": 1})).0,
        ErrorCode::FilterInvalidPath
    );
    assert_eq!(e(json!({"nope.a": 1})).0, ErrorCode::FilterInvalidPath);
    let (c, d) = e(json!({"meta.a": {"$elemMatch": 1}}));
    assert_eq!(c, ErrorCode::FilterUnsupportedOperator);
    assert_eq!(d["operator"], "$elemMatch");
    assert_eq!(d["path"], "where[\"meta.a\"].$elemMatch");
}

#[test]
fn nul_is_refused() {
    for w in [
        json!({"state": "a\u{0}b"}),
        json!({"meta": {"k\u{0}": 1}}),
        json!({"meta.a": {"$in": ["\u{0}"]}}),
        json!({"state": {"$like": "\u{0}"}}),
    ] {
        assert_eq!(e(w.clone()).0, ErrorCode::FilterInvalidValue, "{w}");
    }
}

#[test]
fn regex_paths() {
    let w = json!({"$or": [{"state": "a"}, {"meta.s": {"$not": {"$nregex": "("}}}]});
    assert_eq!(
        first_regex_path(&w, "where").as_deref(),
        Some("where.$or[1][\"meta.s\"].$not.$nregex")
    );
    let e = locate_regex_error(Error::new(ErrorCode::FilterInvalidRegex), &w, "where");
    assert_eq!(
        e.data.unwrap()["path"],
        "where.$or[1][\"meta.s\"].$not.$nregex"
    );
    assert_eq!(first_regex_path(&json!({"state": "a"}), "where"), None);
}
