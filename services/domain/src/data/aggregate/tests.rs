//! Parser tests of aggregate bodies: functions, groupBy, having, order and error paths.

use super::*;
use crate::data::filter::tests::orders;
use crate::data::filter::Filter;
use crate::ports::aggregate::{AggOrder, DateUnit};

fn code_path(body: Value) -> (ErrorCode, String) {
    let e = request(&orders(), Some(&body)).unwrap_err();
    let path = e
        .data
        .as_ref()
        .and_then(|d| d.get("path"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    (e.code, path)
}

#[test]
fn full_body() {
    let (q, _) = request(
        &orders(),
        Some(&json!({
            "where": {"state": {"$ne": "new"}},
            "aggregate": {"n": {"$count": "*"}, "revenue": {"$sum": "total"}, "_a": {"$avg": "age"},
                          "first": {"$min": "at"}, "d": {"$distinct": "state"}, "c": {"$count": "state"}},
            "groupBy": ["state", {"$dateTrunc": {"field": "at", "unit": "week", "timezone": "Europe/Paris"}, "as": "wk"},
                        {"$dateTrunc": {"field": "created_at", "unit": "month"}}],
            "having": {"revenue": {"$gt": 100}, "$or": [{"n": {"$between": [1, 5]}}, {"wk": null}]},
            "order": ["revenue desc"], "limit": 5, "offset": 2, "trashed": "include"
        })),
    )
    .unwrap();
    let keys: Vec<&str> = q.groups.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(keys, ["state", "wk", "created_at_month"]);
    let funcs: Vec<AggFn> = q.aggregates.iter().map(|a| a.func).collect();
    assert_eq!(
        funcs,
        [
            AggFn::CountAll,
            AggFn::Sum,
            AggFn::Avg,
            AggFn::Min,
            AggFn::Distinct,
            AggFn::Count
        ]
    );
    assert!(
        matches!(&q.groups[1].expr, GroupExpr::DateTrunc { unit: DateUnit::Week, timezone, .. } if timezone == "Europe/Paris")
    );
    assert!(
        matches!(&q.groups[2].expr, GroupExpr::DateTrunc { timezone, .. } if timezone == "UTC")
    );
    // revenue is output position 4 (3 group keys, then n, revenue)
    assert_eq!(
        q.order[0],
        AggOrder {
            position: 4,
            desc: true
        }
    );
    assert_eq!(
        &q.order[1..],
        &[
            AggOrder {
                position: 0,
                desc: false
            },
            AggOrder {
                position: 1,
                desc: false
            },
            AggOrder {
                position: 2,
                desc: false
            },
        ]
    );
    match &q.having {
        Filter::And(parts) => {
            assert!(
                matches!(&parts[0], Filter::Cmp { column, .. } if column.name.as_str() == "c4")
            );
            assert!(matches!(&parts[1], Filter::Or(_)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        (q.limit, q.offset, q.trashed),
        (5, 2, TrashedScope::Include)
    );
}

#[test]
fn errors_with_paths() {
    use ErrorCode::*;
    let cases = [
        (json!({}), FilterAggregateMissing, "aggregate"),
        (
            json!({"aggregate": {}}),
            FilterAggregateMissing,
            "aggregate",
        ),
        (
            json!({"aggregate": []}),
            FilterAggregateInvalid,
            "aggregate",
        ),
        (
            json!({"aggregate": {"Bad": {"$count": "*"}}}),
            FilterAggregateInvalid,
            "aggregate.Bad",
        ),
        (
            json!({"aggregate": {"x\"; drop": {"$count": "*"}}}),
            FilterAggregateInvalid,
            "aggregate[\"x\\\"; drop\"]",
        ),
        (
            json!({"aggregate": {"s": {"$sum": "state"}}}),
            FilterAggregateInvalid,
            "aggregate.s.$sum",
        ),
        (
            json!({"aggregate": {"s": {"$median": "age"}}}),
            FilterAggregateInvalid,
            "aggregate.s.$median",
        ),
        (
            json!({"aggregate": {"s": {"$min": "meta"}}}),
            FilterAggregateInvalid,
            "aggregate.s.$min",
        ),
        (
            json!({"aggregate": {"s": {"$sum": "nope"}}}),
            FilterAggregateInvalid,
            "aggregate.s.$sum",
        ),
        (
            json!({"aggregate": {"s": {"$sum": "age", "$avg": "age"}}}),
            FilterAggregateInvalid,
            "aggregate.s",
        ),
        (
            json!({"aggregate": {"n": {"$count": "*"}}, "groupBy": ["nope"]}),
            FilterGroupByInvalid,
            "groupBy[0]",
        ),
        (
            json!({"aggregate": {"n": {"$count": "*"}}, "group_by": "state"}),
            FilterGroupByInvalid,
            "group_by",
        ),
        (
            json!({"aggregate": {"n": {"$count": "*"}}, "groupBy": [{"$dateTrunc": {"field": "state", "unit": "day"}}]}),
            FilterGroupByInvalid,
            "groupBy[0].$dateTrunc.field",
        ),
        (
            json!({"aggregate": {"n": {"$count": "*"}}, "groupBy": [{"$dateTrunc": {"field": "at", "unit": "fortnight"}}]}),
            FilterGroupByInvalid,
            "groupBy[0].$dateTrunc.unit",
        ),
        (
            json!({"aggregate": {"n": {"$count": "*"}}, "groupBy": ["state", {"$dateTrunc": {"field": "at", "unit": "day", "timezone": "'; drop"}}]}),
            FilterGroupByInvalid,
            "groupBy[1].$dateTrunc.timezone",
        ),
        (
            json!({"aggregate": {"n": {"$count": "*"}}, "groupBy": ["state", "state"]}),
            FilterGroupByInvalid,
            "groupBy[1]",
        ),
        (
            json!({"aggregate": {"state": {"$count": "*"}}, "groupBy": ["state"]}),
            FilterAggregateInvalid,
            "aggregate.state",
        ),
        (
            json!({"aggregate": {"n": {"$count": "*"}}, "having": {"age": 1}}),
            FilterHavingInvalid,
            "having.age",
        ),
        (
            json!({"aggregate": {"n": {"$count": "*"}}, "having": {"n": {"$like": "1%"}}}),
            FilterHavingInvalid,
            "having.n.$like",
        ),
        (
            json!({"aggregate": {"n": {"$count": "*"}}, "having": {"$or": [{"n": {"$exists": true}}]}}),
            FilterHavingInvalid,
            "having.$or[0].n.$exists",
        ),
        (
            json!({"aggregate": {"n": {"$count": "*"}}, "having": {"n": {"$gt": "x"}}}),
            FilterInvalidValue,
            "having.n.$gt",
        ),
        (
            json!({"aggregate": {"n": {"$count": "*"}}, "having": {"$and": []}}),
            FilterEmptyLogicalArray,
            "having.$and",
        ),
        (
            json!({"aggregate": {"n": {"$count": "*"}}, "order": "age desc"}),
            FilterInvalidSort,
            "order",
        ),
        (
            json!({"aggregate": {"n": {"$count": "*"}}, "order": "n sideways"}),
            FilterInvalidSort,
            "order",
        ),
        (
            json!({"aggregate": {"n": {"$count": "*"}}, "limit": -1}),
            FilterInvalidLimit,
            "limit",
        ),
        (
            json!({"aggregate": {"n": {"$count": "*"}}, "where": {"nope": 1}}),
            FilterUnknownField,
            "where.nope",
        ),
        (
            json!({"aggregate": {"n": {"$count": "*"}}, "state": "new"}),
            FilterInvalid,
            "state",
        ),
    ];
    for (body, code, path) in cases {
        assert_eq!(code_path(body.clone()), (code, path.to_owned()), "{body}");
    }
    assert_eq!(
        request(&orders(), Some(&json!([1]))).unwrap_err().code,
        ErrorCode::ValidationBodyNotObject
    );
}

#[test]
fn get_form() {
    let m = orders();
    let p = |count, sum| AggregateParams {
        count,
        sum,
        avg: None,
        min: None,
        max: None,
        r#where: Some(r#"{"state":"paid"}"#),
    };
    let q = get_request(&m, &p(Some(""), Some("total"))).unwrap();
    assert_eq!(q.aggregates.len(), 2);
    assert_eq!(q.aggregates[0].key, "count");
    assert!(get_request(&m, &p(Some("true"), None)).is_ok());
    let e = get_request(&m, &p(None, None)).unwrap_err();
    assert_eq!(e.code, ErrorCode::FilterAggregateMissing);
    let e = get_request(&m, &p(None, Some("state"))).unwrap_err();
    assert_eq!(e.code, ErrorCode::FilterAggregateInvalid);
    assert_eq!(e.data.unwrap()["path"], "sum");
}

#[test]
fn names() {
    assert!(alias_ok("_x1") && alias_ok("a") && !alias_ok("A") && !alias_ok("1a") && !alias_ok(""));
    assert!(!alias_ok(&"a".repeat(64)) && alias_ok(&"a".repeat(63)));
    assert!(
        timezone_ok("UTC")
            && timezone_ok("America/Argentina/Buenos_Aires")
            && timezone_ok("Etc/GMT+5")
    );
    assert!(!timezone_ok("'x") && !timezone_ok("") && !timezone_ok("a//b") && !timezone_ok("/a"));
}
