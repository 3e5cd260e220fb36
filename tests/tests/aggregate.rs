//! Aggregate (A7): every function on real rows (NULLs, empty results, exact decimals), groupBy
//! with several keys and every `$dateTrunc` unit (UTC and other zones, timestamp and date
//! fields), having, order, limit/offset, trash scope, the GET form, every error code with its
//! path, roles, and injection attempts through aliases, groupBy, having and order.

use abbotik_testkit::{
    enc, err, lock_model_table, okd, spawn_app, spawn_app_with, Resp, TestApp, TestTenant,
};
use serde_json::{json, Value};
use std::time::Duration;

const FIELDS: &str = r#"{"fields":[
    {"field_name":"k","type":"text"},
    {"field_name":"state","type":"text"},
    {"field_name":"n","type":"integer"},
    {"field_name":"d","type":"decimal"},
    {"field_name":"at","type":"timestamp"},
    {"field_name":"day","type":"date"},
    {"field_name":"meta","type":"jsonb"}
]}"#;

/// A tenant with `sales` and five rows; returns the record ids in order.
async fn setup_in(app: &TestApp, t: &TestTenant) -> Vec<String> {
    let fields: Value = serde_json::from_str(FIELDS).unwrap();
    let r = app.post("/api/describe/sales", t.token(), fields).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let rows = json!([
        {"k":"k1","state":"paid","n":10,"d":"1.10","at":"2026-05-04T23:30:00Z","day":"2026-05-04"},
        {"k":"k2","state":"paid","n":20,"d":"2.25","at":"2026-05-05T00:30:00Z","day":"2026-05-05"},
        {"k":"k3","state":"new","at":"2026-05-10T12:00:00Z"},
        {"k":"k4","n":5,"d":"0.05","at":"2025-12-31T23:59:59.5Z","day":"2025-12-31"},
        {"k":"k5","state":"shipped","n":7,"d":"100"}
    ]);
    let r = app.post("/api/data/sales", t.token(), rows).await;
    let d = okd(&r, 201);
    d.as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn setup() -> (TestApp, TestTenant) {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    setup_in(&app, &t).await;
    (app, t)
}

async fn agg(app: &TestApp, t: &TestTenant, body: Value) -> Resp {
    app.call("POST", "/api/aggregate/sales", t.token(), Some(body))
        .await
}

/// The `data` text of a success (exact number rendering).
fn data_text(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.text);
    let start = r.text.find("\"data\":").expect("data") + 7;
    r.text[start..r.text.len() - 1].to_owned()
}

#[tokio::test]
async fn every_function_with_nulls_and_empty_results() {
    let (app, t) = setup().await;
    let body = json!({"aggregate": {
        "c": {"$count": "*"}, "cn": {"$count": "n"}, "s": {"$sum": "n"}, "sd": {"$sum": "d"},
        "a": {"$avg": "n"}, "mi": {"$min": "n"}, "ma": {"$max": "d"}, "mt": {"$min": "at"},
        "mxt": {"$max": "at"}, "md": {"$max": "day"}, "ms": {"$min": "state"},
        "ds": {"$distinct": "state"}, "_x": {"$count": "meta"}
    }});
    let r = agg(&app, &t, body.clone()).await;
    assert_eq!(
        data_text(&r),
        r#"[{"c":5,"cn":4,"s":42,"sd":103.40,"a":10.5,"mi":5,"ma":100,"mt":"2025-12-31T23:59:59.500000Z","mxt":"2026-05-10T12:00:00.000000Z","md":"2026-05-05","ms":"new","ds":3,"_x":0}]"#
    );
    // No matching rows: exactly one row, counts 0, the rest null.
    let mut empty = body;
    empty["where"] = json!({"k": "none"});
    let r = agg(&app, &t, empty).await;
    assert_eq!(
        data_text(&r),
        r#"[{"c":0,"cn":0,"s":null,"sd":null,"a":null,"mi":null,"ma":null,"mt":null,"mxt":null,"md":null,"ms":null,"ds":0,"_x":0}]"#
    );
    // Same on a model with no rows at all, and with groupBy no rows at all.
    let r = app
        .post(
            "/api/describe/empty",
            t.token(),
            json!({"fields":[{"field_name":"v","type":"integer"}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .post(
            "/api/aggregate/empty",
            t.token(),
            json!({"aggregate":{"n":{"$count":"*"},"s":{"$sum":"v"}}}),
        )
        .await;
    assert_eq!(data_text(&r), r#"[{"n":0,"s":null}]"#);
    let r = app
        .post(
            "/api/aggregate/empty",
            t.token(),
            json!({"aggregate":{"n":{"$count":"*"}},"groupBy":["v"]}),
        )
        .await;
    assert_eq!(data_text(&r), "[]");
    // where narrows; text min/max in byte order.
    let r = agg(&app, &t, json!({"where":{"state":"paid"},"aggregate":{"s":{"$sum":"d"},"a":{"$avg":"d"},"hi":{"$max":"state"}}})).await;
    assert_eq!(data_text(&r), r#"[{"s":3.35,"a":1.675,"hi":"paid"}]"#);
}

#[tokio::test]
async fn group_by_several_keys_having_order_bounds() {
    let (app, t) = setup().await;
    // Default order: group keys ascending (NULL last), keys then aliases in request order.
    let r = agg(
        &app,
        &t,
        json!({"aggregate":{"n":{"$count":"*"},"total":{"$sum":"d"}},"groupBy":["state"]}),
    )
    .await;
    assert_eq!(
        data_text(&r),
        r#"[{"state":"new","n":1,"total":null},{"state":"paid","n":2,"total":3.35},{"state":"shipped","n":1,"total":100},{"state":null,"n":1,"total":0.05}]"#
    );
    let base = json!({
        "aggregate": {"n": {"$count": "*"}, "total": {"$sum": "d"}},
        "groupBy": ["state", {"$dateTrunc": {"field": "at", "unit": "week"}, "as": "wk"}],
        "having": {"n": {"$gte": 1}, "total": {"$ne": null}},
        "order": ["total desc"]
    });
    let r = agg(&app, &t, base.clone()).await;
    assert_eq!(
        data_text(&r),
        r#"[{"state":"shipped","wk":null,"n":1,"total":100},{"state":"paid","wk":"2026-05-04T00:00:00.000000Z","n":2,"total":3.35},{"state":null,"wk":"2025-12-29T00:00:00.000000Z","n":1,"total":0.05}]"#
    );
    let mut page = base.clone();
    page["limit"] = json!(1);
    page["offset"] = json!(1);
    let d = okd(&agg(&app, &t, page).await, 200);
    assert_eq!(
        d,
        json!([{"state":"paid","wk":"2026-05-04T00:00:00.000000Z","n":2,"total":3.35}])
    );
    let mut zero = base.clone();
    zero["limit"] = json!(0);
    assert_eq!(okd(&agg(&app, &t, zero).await, 200), json!([]));
    // having over group keys, $in/$nin/$between/$null and the logical operators; group_by alias.
    let states = |d: &Value| -> Vec<Value> {
        d.as_array()
            .unwrap()
            .iter()
            .map(|r| r["state"].clone())
            .collect()
    };
    for (having, want) in [
        (
            json!({"state": {"$in": ["paid", "new"]}}),
            json!(["new", "paid"]),
        ),
        (
            json!({"state": {"$nin": ["paid", null]}}),
            json!(["new", "shipped"]),
        ),
        (json!({"state": null}), json!([null])),
        (
            json!({"state": {"$null": false}, "n": 1}),
            json!(["new", "shipped"]),
        ),
        (json!({"total": {"$between": [1, 50]}}), json!(["paid"])),
        (
            json!({"$or": [{"n": {"$gt": 1}}, {"total": {"$lt": 1}}]}),
            json!(["paid", null]),
        ),
        (json!({"$not": {"n": 1}}), json!(["paid"])),
        (json!({"$nor": [{"n": 1}]}), json!(["paid"])),
        (
            json!({"$nand": [{"n": 1}, {"state": {"$ne": "new"}}]}),
            json!(["new", "paid"]),
        ),
        (json!({"n": {"$not": {"$lt": 2}}}), json!(["paid"])),
        (
            json!({"mx": {"$gte": "2026-05-05T00:00:00Z"}}),
            json!(["new", "paid"]),
        ),
    ] {
        let d = okd(
            &agg(&app, &t, json!({"aggregate":{"n":{"$count":"*"},"total":{"$sum":"d"},"mx":{"$max":"at"}},"group_by":["state"],"having":having})).await,
            200,
        );
        assert_eq!(json!(states(&d)), want, "{having}");
    }
    // order forms over aliases and group keys.
    for order in [
        json!("state desc"),
        json!({"state": "DESC"}),
        json!([{"field": "state", "sort": "descending"}]),
    ] {
        let d = okd(
            &agg(
                &app,
                &t,
                json!({"aggregate":{"n":{"$count":"*"}},"groupBy":["state"],"order":order}),
            )
            .await,
            200,
        );
        assert_eq!(
            json!(states(&d)),
            json!([null, "shipped", "paid", "new"]),
            "{order}"
        );
    }
}

#[tokio::test]
async fn date_buckets_every_unit_and_time_zones() {
    let (app, t) = setup().await;
    let one = |field: &str, unit: &str, tz: Option<&str>, k: &str| {
        let mut dt = json!({"field": field, "unit": unit});
        if let Some(tz) = tz {
            dt["timezone"] = json!(tz);
        }
        json!({"where":{"k":k},"aggregate":{"n":{"$count":"*"}},"groupBy":[{"$dateTrunc": dt}]})
    };
    // k1 at 2026-05-04T23:30:00Z (a Monday).
    for (unit, want) in [
        ("second", "2026-05-04T23:30:00.000000Z"),
        ("minute", "2026-05-04T23:30:00.000000Z"),
        ("hour", "2026-05-04T23:00:00.000000Z"),
        ("day", "2026-05-04T00:00:00.000000Z"),
        ("week", "2026-05-04T00:00:00.000000Z"),
        ("month", "2026-05-01T00:00:00.000000Z"),
        ("quarter", "2026-04-01T00:00:00.000000Z"),
        ("year", "2026-01-01T00:00:00.000000Z"),
    ] {
        let d = okd(&agg(&app, &t, one("at", unit, None, "k1")).await, 200);
        assert_eq!(d, json!([{ format!("at_{unit}"): want, "n": 1 }]), "{unit}");
    }
    // Europe/Paris (UTC+2 in May, +1 in winter): k1 is 01:30 on Tuesday 5 May there.
    for (unit, k, want) in [
        ("day", "k1", "2026-05-04T22:00:00.000000Z"),
        ("week", "k1", "2026-05-03T22:00:00.000000Z"),
        ("hour", "k1", "2026-05-04T23:00:00.000000Z"),
        ("month", "k1", "2026-04-30T22:00:00.000000Z"),
        ("year", "k4", "2025-12-31T23:00:00.000000Z"),
        ("quarter", "k4", "2025-12-31T23:00:00.000000Z"),
    ] {
        let d = okd(
            &agg(&app, &t, one("at", unit, Some("Europe/Paris"), k)).await,
            200,
        );
        assert_eq!(d[0][format!("at_{unit}")], want, "{unit} {k}");
    }
    // America/New_York: k2 (00:30Z on 5 May) is 20:30 on 4 May.
    let d = okd(
        &agg(&app, &t, one("at", "day", Some("America/New_York"), "k2")).await,
        200,
    );
    assert_eq!(d[0]["at_day"], "2026-05-04T04:00:00.000000Z");
    // A date field: midnight of the zone.
    let d = okd(&agg(&app, &t, one("day", "month", None, "k2")).await, 200);
    assert_eq!(d[0]["day_month"], "2026-05-01T00:00:00.000000Z");
    let d = okd(
        &agg(&app, &t, one("day", "week", Some("Asia/Tokyo"), "k2")).await,
        200,
    );
    assert_eq!(d[0]["day_week"], "2026-05-03T15:00:00.000000Z");
    // System timestamps group too; several buckets in one request.
    let d = okd(
        &agg(
            &app,
            &t,
            json!({"aggregate":{"n":{"$count":"*"}},"groupBy":[
            {"$dateTrunc":{"field":"created_at","unit":"year"}},
            {"$dateTrunc":{"field":"at","unit":"year","timezone":"UTC"},"as":"y"}]}),
        )
        .await,
        200,
    );
    let rows = d.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{d}");
    assert_eq!(rows[0]["y"], "2025-01-01T00:00:00.000000Z");
    assert_eq!(rows[1]["y"], "2026-01-01T00:00:00.000000Z");
    assert_eq!(rows[1]["n"], 3);
    assert!(rows[2]["y"].is_null());
    // Unknown zone.
    let e = err(
        &agg(&app, &t, one("at", "day", Some("Mars/Olympus_Mons"), "k1")).await,
        400,
        "FILTER_GROUP_BY_INVALID",
    );
    assert_eq!(e["path"], "groupBy[0].$dateTrunc.timezone");
}

#[tokio::test]
async fn get_form_trash_scope_and_roles() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let ids = setup_in(&app, &t).await;
    let w = enc(r#"{"state":"paid"}"#);
    for count in ["count", "count=", "count=true"] {
        let r = app
            .get(
                &format!("/api/aggregate/sales?{count}&sum=n&avg=d&min=at&max=state&where={w}"),
                t.token(),
            )
            .await;
        assert_eq!(
            data_text(&r),
            r#"[{"count":2,"sum":30,"avg":1.675,"min":"2026-05-04T23:30:00.000000Z","max":"paid"}]"#,
            "{count}"
        );
    }
    let r = app.get("/api/aggregate/sales?sum=d", t.token()).await;
    assert_eq!(data_text(&r), r#"[{"sum":103.40}]"#);
    let r = app
        .get("/api/aggregate/sales?count&unwrap", t.token())
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!([{"count": 5}]));
    let e = err(
        &app.get("/api/aggregate/sales", t.token()).await,
        400,
        "FILTER_AGGREGATE_MISSING",
    );
    assert!(e["path"].is_string());
    err(
        &app.get(&format!("/api/aggregate/sales?where={w}"), t.token())
            .await,
        400,
        "FILTER_AGGREGATE_MISSING",
    );
    let e = err(
        &app.get("/api/aggregate/sales?avg=state", t.token()).await,
        400,
        "FILTER_AGGREGATE_INVALID",
    );
    assert_eq!(e["path"], "avg");
    let e = err(
        &app.get("/api/aggregate/sales?count&where=%7Bnope", t.token())
            .await,
        400,
        "FILTER_INVALID",
    );
    assert_eq!(e["path"], "where");
    let e = err(
        &app.get(
            &format!(
                "/api/aggregate/sales?count&where={}",
                enc(r#"{"k":{"$regex":"("}}"#)
            ),
            t.token(),
        )
        .await,
        400,
        "FILTER_INVALID_REGEX",
    );
    assert_eq!(e["path"], "where.k.$regex");
    err(
        &app.get("/api/aggregate/nope?count", t.token()).await,
        404,
        "MODEL_NOT_FOUND",
    );
    err(
        &app.get("/api/aggregate/sales?count", None).await,
        401,
        "AUTH_TOKEN_REQUIRED",
    );

    // Trash scope.
    let r = app
        .call(
            "DELETE",
            &format!("/api/data/sales/{}", ids[4]),
            t.token(),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let c = |trashed: &str| json!({"aggregate":{"n":{"$count":"*"}},"trashed":trashed});
    assert_eq!(
        okd(&app.get("/api/aggregate/sales?count", t.token()).await, 200),
        json!([{"count":4}])
    );
    assert_eq!(
        okd(
            &agg(&app, &t, json!({"aggregate":{"n":{"$count":"*"}}})).await,
            200
        ),
        json!([{"n":4}])
    );
    assert_eq!(
        okd(&agg(&app, &t, c("exclude")).await, 200),
        json!([{"n":4}])
    );
    assert_eq!(
        okd(&agg(&app, &t, c("include")).await, 200),
        json!([{"n":5}])
    );
    assert_eq!(okd(&agg(&app, &t, c("only")).await, 200), json!([{"n":1}]));
    err(
        &agg(&app, &t, c("all")).await,
        400,
        "VALIDATION_FIELD_INVALID",
    );

    // Roles: read may aggregate, deny may not.
    let (_, reader) = t.add_user(&app, "reader", "read").await;
    let r = app
        .get("/api/aggregate/sales?count", reader.as_deref())
        .await;
    assert_eq!(okd(&r, 200), json!([{"count":4}]));
    let (_, denied) = t.add_user(&app, "nobody", "deny").await;
    if let Some(tok) = denied {
        let r = app.get("/api/aggregate/sales?count", Some(&tok)).await;
        assert!(r.status == 403 || r.status == 401, "{}", r.text);
    }
}

#[tokio::test]
async fn error_codes_with_paths() {
    let (app, t) = setup().await;
    let n = json!({"n": {"$count": "*"}});
    let cases = [
        (json!({}), "FILTER_AGGREGATE_MISSING", "aggregate"),
        (
            json!({"where": {"state": "paid"}}),
            "FILTER_AGGREGATE_MISSING",
            "aggregate",
        ),
        (
            json!({"aggregate": {}}),
            "FILTER_AGGREGATE_MISSING",
            "aggregate",
        ),
        (
            json!({"aggregate": "count"}),
            "FILTER_AGGREGATE_INVALID",
            "aggregate",
        ),
        (
            json!({"aggregate": {"Total": {"$sum": "n"}}}),
            "FILTER_AGGREGATE_INVALID",
            "aggregate.Total",
        ),
        (
            json!({"aggregate": {"t": {"$sum": "state"}}}),
            "FILTER_AGGREGATE_INVALID",
            "aggregate.t.$sum",
        ),
        (
            json!({"aggregate": {"t": {"$avg": "at"}}}),
            "FILTER_AGGREGATE_INVALID",
            "aggregate.t.$avg",
        ),
        (
            json!({"aggregate": {"t": {"$max": "meta"}}}),
            "FILTER_AGGREGATE_INVALID",
            "aggregate.t.$max",
        ),
        (
            json!({"aggregate": {"t": {"$sum": "*"}}}),
            "FILTER_AGGREGATE_INVALID",
            "aggregate.t.$sum",
        ),
        (
            json!({"aggregate": {"t": {"$median": "n"}}}),
            "FILTER_AGGREGATE_INVALID",
            "aggregate.t.$median",
        ),
        (
            json!({"aggregate": n, "groupBy": ["nope"]}),
            "FILTER_GROUP_BY_INVALID",
            "groupBy[0]",
        ),
        (
            json!({"aggregate": n, "groupBy": [{"$dateTrunc": {"field": "n", "unit": "day"}}]}),
            "FILTER_GROUP_BY_INVALID",
            "groupBy[0].$dateTrunc.field",
        ),
        (
            json!({"aggregate": n, "group_by": ["k", {"$dateTrunc": {"field": "at", "unit": "decade"}}]}),
            "FILTER_GROUP_BY_INVALID",
            "group_by[1].$dateTrunc.unit",
        ),
        (
            json!({"aggregate": n, "groupBy": [{"$dateTrunc": {"field": "at", "unit": "day"}, "as": "Bad"}]}),
            "FILTER_GROUP_BY_INVALID",
            "groupBy[0].as",
        ),
        (
            json!({"aggregate": n, "groupBy": [{"$bucket": "at"}]}),
            "FILTER_GROUP_BY_INVALID",
            "groupBy[0].$bucket",
        ),
        (
            json!({"aggregate": n, "groupBy": [3]}),
            "FILTER_GROUP_BY_INVALID",
            "groupBy[0]",
        ),
        (
            json!({"aggregate": n, "having": {"total": {"$gt": 1}}}),
            "FILTER_HAVING_INVALID",
            "having.total",
        ),
        (
            json!({"aggregate": n, "having": {"n": {"$regex": "1"}}}),
            "FILTER_HAVING_INVALID",
            "having.n.$regex",
        ),
        (
            json!({"aggregate": n, "having": {"$or": [{"n": 1}, {"n": {"$exists": true}}]}}),
            "FILTER_HAVING_INVALID",
            "having.$or[1].n.$exists",
        ),
        (
            json!({"aggregate": n, "having": {"n": {"$gt": "many"}}}),
            "FILTER_INVALID_VALUE",
            "having.n.$gt",
        ),
        (
            json!({"aggregate": n, "having": {"$or": []}}),
            "FILTER_EMPTY_LOGICAL_ARRAY",
            "having.$or",
        ),
        (
            json!({"aggregate": n, "order": "k asc"}),
            "FILTER_INVALID_SORT",
            "order",
        ),
        (
            json!({"aggregate": n, "limit": 10001}),
            "FILTER_INVALID_LIMIT",
            "limit",
        ),
        (
            json!({"aggregate": n, "offset": -1}),
            "FILTER_INVALID_OFFSET",
            "offset",
        ),
        (
            json!({"aggregate": n, "where": {"nope": 1}}),
            "FILTER_UNKNOWN_FIELD",
            "where.nope",
        ),
        (
            json!({"aggregate": n, "where": {"k": {"$regex": "("}}}),
            "FILTER_INVALID_REGEX",
            "where.k.$regex",
        ),
        (
            json!({"aggregate": n, "state": "paid"}),
            "FILTER_INVALID",
            "state",
        ),
    ];
    for (body, code, path) in cases {
        let e = err(&agg(&app, &t, body.clone()).await, 400, code);
        assert_eq!(e["path"], path, "{body}");
    }
    err(
        &app.call("POST", "/api/aggregate/sales", t.token(), Some(json!([1])))
            .await,
        400,
        "VALIDATION_BODY_NOT_OBJECT",
    );
}

#[tokio::test]
async fn injection_attempts_change_nothing() {
    let (app, t) = setup().await;
    let other = TestTenant::new(&app).await;
    setup_in(&app, &other).await;
    let drop = "x'); DROP TABLE sales; --";
    let n = json!({"n": {"$count": "*"}});
    let bodies = [
        (
            json!({"aggregate": { format!("a\"; {drop}"): {"$count": "*"} }}),
            Some("FILTER_AGGREGATE_INVALID"),
        ),
        (
            json!({"aggregate": {"a": {"$sum": format!("n\"); {drop}")}}}),
            Some("FILTER_AGGREGATE_INVALID"),
        ),
        (
            json!({"aggregate": {"a": {"$count": drop}}}),
            Some("FILTER_AGGREGATE_INVALID"),
        ),
        (
            json!({"aggregate": n, "groupBy": [format!("state\", {drop}")]}),
            Some("FILTER_GROUP_BY_INVALID"),
        ),
        (
            json!({"aggregate": n, "groupBy": [{"$dateTrunc": {"field": "at", "unit": format!("day', {drop}")}}]}),
            Some("FILTER_GROUP_BY_INVALID"),
        ),
        (
            json!({"aggregate": n, "groupBy": [{"$dateTrunc": {"field": "at", "unit": "day", "timezone": format!("UTC{drop}")}}]}),
            Some("FILTER_GROUP_BY_INVALID"),
        ),
        (
            json!({"aggregate": n, "groupBy": [{"$dateTrunc": {"field": "at", "unit": "day", "timezone": "Europe/x-DROP"}}]}),
            Some("FILTER_GROUP_BY_INVALID"),
        ),
        (
            json!({"aggregate": n, "groupBy": [{"$dateTrunc": {"field": "at", "unit": "day"}, "as": drop}]}),
            Some("FILTER_GROUP_BY_INVALID"),
        ),
        (
            json!({"aggregate": n, "having": { format!("n\" > 0; {drop}"): 1 }}),
            Some("FILTER_HAVING_INVALID"),
        ),
        (
            json!({"aggregate": n, "having": {"n": { format!("$gt'; {drop}"): 1 }}}),
            Some("FILTER_HAVING_INVALID"),
        ),
        (
            json!({"aggregate": n, "having": {"n": drop}}),
            Some("FILTER_INVALID_VALUE"),
        ),
        (
            json!({"aggregate": n, "order": format!("n; {drop}")}),
            Some("FILTER_INVALID_SORT"),
        ),
        (
            json!({"aggregate": n, "order": format!("n desc; {drop}")}),
            Some("FILTER_INVALID_SORT"),
        ),
        (
            json!({"aggregate": n, "order": { format!("n\" desc, {drop}"): "asc" }}),
            Some("FILTER_INVALID_SORT"),
        ),
        (
            json!({"aggregate": n, "groupBy": ["state"], "having": {"state": drop}}),
            None,
        ),
        (json!({"aggregate": n, "where": {"state": drop}}), None),
    ];
    for (body, code) in bodies {
        let r = agg(&app, &t, body.clone()).await;
        match code {
            Some(c) => {
                err(&r, 400, c);
            }
            None => {
                okd(&r, 200);
            }
        }
    }
    for tenant in [&t, &other] {
        let d = okd(
            &app.get("/api/aggregate/sales?count&sum=n", tenant.token())
                .await,
            200,
        );
        assert_eq!(d, json!([{"count": 5, "sum": 42}]));
    }
}

/// A6.6 applies to aggregates: the statement timeout answers `400 FILTER_QUERY_TIMEOUT`, and
/// with one query slot per tenant a second aggregate waits, then answers 429 `scope:"query"`.
#[tokio::test]
async fn statement_timeout_and_query_slots() {
    let app = spawn_app_with(&[
        ("ABBOTIK_STATEMENT_TIMEOUT_MS", "7000"),
        ("ABBOTIK_QUERY_CONCURRENCY_PER_TENANT", "1"),
    ])
    .await;
    let t = TestTenant::new(&app).await;
    setup_in(&app, &t).await;
    let db = lock_model_table(&t.name, "sales").await;
    let body = json!({"aggregate":{"n":{"$count":"*"}},"groupBy":["state"]});
    let held = agg(&app, &t, body.clone());
    let refused = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        app.get("/api/aggregate/sales?count", t.token()).await
    };
    let (first, second) = tokio::join!(held, refused);
    db.batch_execute("COMMIT").await.unwrap();
    assert_eq!(err(&first, 400, "FILTER_QUERY_TIMEOUT")["path"], "where");
    assert_eq!(err(&second, 429, "RATE_LIMITED")["scope"], "query");
    assert_eq!(
        okd(&agg(&app, &t, body).await, 200)
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test]
async fn having_on_averages_dates_and_buckets() {
    let (app, t) = setup().await;
    let body = |having: Value| {
        json!({"aggregate":{"a":{"$avg":"n"},"first":{"$min":"day"},"n":{"$count":"*"}},
               "groupBy":[{"$dateTrunc":{"field":"at","unit":"year"},"as":"y"}],"having":having})
    };
    let ys = |d: &Value| -> Vec<Value> {
        d.as_array()
            .unwrap()
            .iter()
            .map(|r| r["y"].clone())
            .collect()
    };
    for (having, want) in [
        (
            json!({"a": {"$gt": 10}}),
            json!(["2026-01-01T00:00:00.000000Z"]),
        ),
        (
            json!({"a": {"$lte": 5.5}}),
            json!(["2025-01-01T00:00:00.000000Z"]),
        ),
        (
            json!({"first": {"$lt": "2026-01-01"}}),
            json!(["2025-01-01T00:00:00.000000Z"]),
        ),
        (
            json!({"y": "2026-01-01T02:00:00+02:00"}),
            json!(["2026-01-01T00:00:00.000000Z"]),
        ),
        (json!({"y": null}), json!([null])),
        (
            json!({"y": {"$gte": "2025-06-01T00:00:00Z"}, "n": {"$in": [3, 4]}}),
            json!(["2026-01-01T00:00:00.000000Z"]),
        ),
    ] {
        let d = okd(&agg(&app, &t, body(having.clone())).await, 200);
        assert_eq!(json!(ys(&d)), want, "{having}");
    }
    let e = err(
        &agg(&app, &t, body(json!({"first": {"$gt": "not a date"}}))).await,
        400,
        "FILTER_INVALID_VALUE",
    );
    assert_eq!(e["path"], "having.first.$gt");
}
