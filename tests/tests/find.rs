//! Find (A6): every operator of the `where` language against real rows (NULLs, unicode,
//! arrays, jsonb, extreme numbers), the empty-array table, error codes with their paths,
//! injection attempts, totals, the body forms, saved filters, and `?where` on `/api/data`.

use abbotik_testkit::{
    enc, err, lock_model_table, okd, spawn_app, spawn_app_with, Resp, TestApp, TestTenant,
};
use serde_json::{json, Value};
use std::time::Duration;

const FIELDS: &str = r#"{"fields":[
    {"field_name":"k","type":"text"},
    {"field_name":"name","type":"text","searchable":true},
    {"field_name":"n","type":"integer"},
    {"field_name":"d","type":"decimal"},
    {"field_name":"flag","type":"boolean"},
    {"field_name":"tags","type":"text[]"},
    {"field_name":"nums","type":"integer[]"},
    {"field_name":"meta","type":"jsonb"}
]}"#;

/// A tenant with `items` and five rows `k1`…`k5` (k4 all null).
async fn setup() -> (TestApp, TestTenant) {
    let app = spawn_app().await;
    let t = TestTenant::with_model(&app, "items", serde_json::from_str(FIELDS).unwrap()).await;
    let rows: Value = serde_json::from_str(
        r#"[
        {"k":"k1","name":"alpha","n":1,"d":"1.5","flag":true,"tags":["a","b"],"nums":[1,2],
         "meta":{"size":3,"theme":"dark","tags":["x","y"],"s":"b"}},
        {"k":"k2","name":"Beta","n":-2147483648,"d":"-99999999999999999999.5","flag":false,"tags":[],"nums":[],
         "meta":{"size":10,"theme":null}},
        {"k":"k3","name":"ünïcödé 💥","n":2147483647,"d":"12345678901234567890.123456789","tags":["b"],"nums":[3],
         "meta":{"size":"3","tags":"x"}},
        {"k":"k4"},
        {"k":"k5","name":"a%_b\\c","n":5,"meta":{"other":1}}
    ]"#,
    )
    .unwrap();
    let r = app.post("/api/data/items", t.token(), rows).await;
    assert_eq!(r.status, 201, "{}", r.text);
    (app, t)
}

async fn find(app: &TestApp, t: &TestTenant, body: Value) -> Resp {
    app.call("POST", "/api/find/items", t.token(), Some(body))
        .await
}

fn ks(data: &Value) -> Vec<String> {
    let mut v: Vec<String> = data
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["k"].as_str().unwrap_or("?").to_owned())
        .collect();
    v.sort();
    v
}

/// The sorted `k`s a where matches.
async fn matches(app: &TestApp, t: &TestTenant, w: Value) -> Vec<String> {
    let r = find(app, t, json!({ "where": w })).await;
    ks(&okd(&r, 200))
}

fn k(list: &[u8]) -> Vec<String> {
    list.iter().map(|i| format!("k{i}")).collect()
}

#[tokio::test]
async fn every_operator_against_real_rows() {
    let (app, t) = setup().await;
    let cases: Vec<(Value, &[u8])> = vec![
        (json!({}), &[1, 2, 3, 4, 5]),
        (json!({"n": 1}), &[1]),
        (json!({"n": {"$eq": 1}}), &[1]),
        (json!({"n": null}), &[4]),
        (json!({"n": {"$ne": 1}}), &[2, 3, 5]),
        (json!({"n": {"$neq": null}}), &[1, 2, 3, 5]),
        (json!({"n": {"$gt": 0}}), &[1, 3, 5]),
        (json!({"n": {"$gte": 1}}), &[1, 3, 5]),
        (json!({"n": {"$lt": 0}}), &[2]),
        (json!({"n": {"$lte": 1}}), &[1, 2]),
        (
            json!({"n": {"$gte": -2147483648i64, "$lt": 2147483647}}),
            &[1, 2, 5],
        ),
        (json!({"n": {"$between": [1, 5]}}), &[1, 5]),
        (json!({"n": {"$in": [1, 5]}}), &[1, 5]),
        (json!({"n": [1, 5]}), &[1, 5]),
        (json!({"n": {"$in": [1, null]}}), &[1, 4]),
        (json!({"n": {"$nin": [1]}}), &[2, 3, 5]),
        (json!({"n": {"$nin": [1, null]}}), &[2, 3, 5]),
        (json!({"d": {"$gt": "12345678901234567890.12345678"}}), &[3]),
        (json!({"d": {"$lt": "-99999999999999999999.4"}}), &[2]),
        (json!({"d": 1.5}), &[1]),
        (json!({"flag": false}), &[2]),
        (json!({"name": {"$gt": "a"}}), &[1, 3, 5]),
        (json!({"name": {"$between": ["B", "b"]}}), &[1, 2, 5]),
        (json!({"name": "ünïcödé 💥"}), &[3]),
        (json!({"name": {"$like": "a%"}}), &[1, 5]),
        (json!({"name": {"$like": "a\\%\\_b%"}}), &[5]),
        (json!({"name": {"$nlike": "a%"}}), &[2, 3]),
        (json!({"name": {"$ilike": "b%"}}), &[2]),
        (json!({"name": {"$nilike": "b%"}}), &[1, 3, 5]),
        (json!({"name": {"$regex": "^[AB]"}}), &[2]),
        (json!({"name": {"$nregex": "^a"}}), &[2, 3]),
        (json!({"name": {"$find": "%_b"}}), &[5]),
        (json!({"name": {"$find": "CöD"}}), &[3]),
        (json!({"name": {"$text": "ALP"}}), &[1]),
        (json!({"name": {"$search": "alpha"}}), &[1]),
        (json!({"n": {"$exists": true}}), &[1, 2, 3, 5]),
        (json!({"n": {"$exists": false}}), &[4]),
        (json!({"n": {"$null": true}}), &[4]),
        (json!({"n": {"$null": false}}), &[1, 2, 3, 5]),
        (json!({"tags": {"$any": ["a", "x"]}}), &[1]),
        (json!({"tags": {"$all": ["a", "b"]}}), &[1]),
        (json!({"tags": {"$nany": ["a"]}}), &[2, 3]),
        (json!({"tags": {"$nall": ["a", "b"]}}), &[2, 3]),
        (json!({"nums": {"$any": [3, 9]}}), &[3]),
        (json!({"tags": []}), &[2]),
        (json!({"tags": ["a", "b"]}), &[1]),
        (json!({"tags": {"$size": 0}}), &[2]),
        (json!({"tags": {"$size": {"$gte": 1}}}), &[1, 3]),
        (json!({"nums": {"$size": {"$in": [1, 2]}}}), &[1, 3]),
        (json!({"$or": [{"n": 1}, {"n": 5}]}), &[1, 5]),
        (json!({"$and": [{"n": {"$gt": 0}}, {"flag": true}]}), &[1]),
        (json!({"$nor": [{"n": 1}, {"n": 5}]}), &[2, 3]),
        (json!({"$nand": [{"n": {"$gt": 0}}, {"flag": true}]}), &[2]),
        (json!({"$not": {"n": 1}}), &[2, 3, 5]),
        (
            json!({"$not": [{"n": {"$gt": 0}}, {"n": {"$lt": 5}}]}),
            &[2, 3, 5],
        ),
        (json!({"n": {"$not": {"$gt": 1}}}), &[1, 2]),
        (
            json!({"$or": [{"$and": [{"n": 1}, {"$or": [{"k": "k1"}]}]}, {"k": "k4"}]}),
            &[1, 4],
        ),
        (json!({"meta.theme": "dark"}), &[1]),
        (json!({"meta.size": 3}), &[1]),
        (json!({"meta.size": "3"}), &[3]),
        (json!({"meta.size": {"$gt": 3}}), &[2]),
        (json!({"meta.size": {"$between": [3, 10]}}), &[1, 2]),
        (json!({"meta.size": {"$in": [3, 10]}}), &[1, 2]),
        (json!({"meta.size": {"$ne": 3}}), &[2, 3]),
        (json!({"meta.theme": null}), &[2, 3, 4, 5]),
        (json!({"meta.theme": {"$exists": true}}), &[1, 2]),
        (json!({"meta.theme": {"$exists": false}}), &[3, 4, 5]),
        (json!({"meta.size": {"$nin": [3]}}), &[2, 3]),
        (json!({"meta.size": {"$nin": [3, null]}}), &[2, 3]),
        (json!({"meta.size": {"$in": [null]}}), &[4, 5]),
        (json!({"meta.size": {"$lt": "4"}}), &[1, 2, 3]),
        (json!({"meta.theme": {"$search": "dark"}}), &[1]),
        (json!({"d": {"$gte": "1e-1000", "$lte": 1e19}}), &[1]),
        (json!({"n": {"$in": [-2147483648i64, 2147483647]}}), &[2, 3]),
        (json!({"name": {"$in": ["alpha", "ünïcödé 💥"]}}), &[1, 3]),
        (json!({"meta.theme": {"$null": false}}), &[1]),
        (json!({"meta.s": {"$gt": "a"}}), &[1]),
        (json!({"meta.theme": {"$like": "d%"}}), &[1]),
        (json!({"meta.tags": {"$any": ["x"]}}), &[1]),
        (json!({"meta.tags": {"$all": ["y", "x"]}}), &[1]),
        (json!({"meta.tags": {"$nany": ["x"]}}), &[]),
        (json!({"meta.tags": {"$size": 2}}), &[1]),
        (json!({"meta.tags.0": "x"}), &[1]),
        (json!({"meta": {"theme": "dark"}}), &[1]),
        (
            json!({"created_at": {"$gte": "2000-01-01T00:00:00Z"}}),
            &[1, 2, 3, 4, 5],
        ),
    ];
    let mut bad = Vec::new();
    for (w, want) in cases {
        let got = matches(&app, &t, w.clone()).await;
        if got != k(want) {
            bad.push(format!("{w}: got {got:?}, want {:?}", k(want)));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[tokio::test]
async fn empty_arrays_and_logical_errors() {
    let (app, t) = setup().await;
    let all = k(&[1, 2, 3, 4, 5]);
    for (w, want) in [
        (json!({"n": {"$in": []}}), vec![]),
        (json!({"n": []}), vec![]),
        (json!({"n": {"$nin": []}}), all.clone()),
        (json!({"tags": {"$any": []}}), vec![]),
        (json!({"tags": {"$all": []}}), all.clone()),
        (json!({"tags": {"$nany": []}}), all.clone()),
        (json!({"tags": {"$nall": []}}), vec![]),
        (json!({"meta.tags": {"$all": []}}), all.clone()),
        (json!({"meta.tags": {"$any": []}}), vec![]),
    ] {
        assert_eq!(matches(&app, &t, w.clone()).await, want, "{w}");
    }
    for op in ["$and", "$or", "$not", "$nand", "$nor"] {
        let r = find(&app, &t, json!({"where": { op: [] }})).await;
        assert_eq!(
            err(&r, 400, "FILTER_EMPTY_LOGICAL_ARRAY")["path"],
            format!("where.{op}")
        );
    }
    let r = find(&app, &t, json!({"where": {"n": {"$between": []}}})).await;
    err(&r, 400, "FILTER_INVALID_VALUE");
}

#[tokio::test]
async fn errors_carry_codes_and_paths() {
    let (app, t) = setup().await;
    let cases = [
        (
            json!({"where": {"$or": [{"n": 1}, {"n": {"$between": [1]}}]}}),
            "FILTER_INVALID_VALUE",
            "where.$or[1].n.$between",
        ),
        (
            json!({"where": {"meta.size": {"$gt": true}}}),
            "FILTER_INVALID_VALUE",
            "where[\"meta.size\"].$gt",
        ),
        (
            json!({"where": {"tags": {"$elemMatch": 1}}}),
            "FILTER_UNSUPPORTED_OPERATOR",
            "where.tags.$elemMatch",
        ),
        (
            json!({"where": {"name": {"$regex": "("}}}),
            "FILTER_INVALID_REGEX",
            "where.name.$regex",
        ),
        (
            json!({"where": {"$or": [{"k": "x"}, {"meta.s": {"$nregex": "a{2,1}"}}]}}),
            "FILTER_INVALID_REGEX",
            "where.$or[1][\"meta.s\"].$nregex",
        ),
        (
            json!({"where": {"nope": 1}}),
            "FILTER_UNKNOWN_FIELD",
            "where.nope",
        ),
        (
            json!({"where": {"n.x": 1}}),
            "FILTER_INVALID_PATH",
            "where[\"n.x\"]",
        ),
        (
            json!({"where": {"n": "one"}}),
            "FILTER_INVALID_VALUE",
            "where.n",
        ),
        (
            json!({"where": {"n": {"$gt": 2147483648i64}}}),
            "FILTER_INVALID_VALUE",
            "where.n.$gt",
        ),
        (
            json!({"where": {"n": {"$any": [1]}}}),
            "FILTER_INVALID_VALUE",
            "where.n.$any",
        ),
        (
            json!({"where": {"n": {"$eq": 1, "x": 1}}}),
            "FILTER_INVALID",
            "where.n",
        ),
        (
            json!({"where": {"name": {"$like": "x".repeat(1001)}}}),
            "FILTER_INVALID_VALUE",
            "where.name.$like",
        ),
        (
            json!({"select": ["nope"]}),
            "FILTER_INVALID_SELECT",
            "select",
        ),
        (
            json!({"order": "nope desc"}),
            "FILTER_INVALID_SORT",
            "order",
        ),
        (
            json!({"order": {"n": "asc", "k": "asc"}}),
            "FILTER_INVALID_SORT",
            "order",
        ),
        (
            json!({"order": ["n sideways"]}),
            "FILTER_INVALID_SORT",
            "order[0]",
        ),
        (json!({"limit": 10001}), "FILTER_INVALID_LIMIT", "limit"),
        (json!({"offset": -1}), "FILTER_INVALID_OFFSET", "offset"),
    ];
    for (body, code, path) in cases {
        let r = find(&app, &t, body.clone()).await;
        assert_eq!(err(&r, 400, code)["path"], path, "{body}");
    }
    let r = find(&app, &t, json!({"where": {"n": {"$elemMatch": 1}}})).await;
    assert_eq!(
        err(&r, 400, "FILTER_UNSUPPORTED_OPERATOR")["operator"],
        "$elemMatch"
    );
    let r = find(&app, &t, json!({"trashed": "all"})).await;
    err(&r, 400, "VALIDATION_FIELD_INVALID");
    let r = find(&app, &t, json!([1])).await;
    err(&r, 400, "VALIDATION_BODY_NOT_OBJECT");
    let mut deep = json!({"n": 1});
    for _ in 0..40 {
        deep = json!({"$and": [deep]});
    }
    let r = find(&app, &t, json!({ "where": deep })).await;
    err(&r, 400, "FILTER_TOO_COMPLEX");
    let r = app.get("/api/find/nope_model", t.token()).await;
    assert_eq!(r.status, 405, "{}", r.text);
    let r = find(&app, &t, json!({})).await;
    assert_eq!(ks(&okd(&r, 200)).len(), 5);
    let r = app.call("POST", "/api/find/missing", t.token(), None).await;
    err(&r, 404, "MODEL_NOT_FOUND");
}

#[tokio::test]
async fn injection_attempts_change_nothing() {
    let (app, t) = setup().await;
    let other = TestTenant::with_model(&app, "items", serde_json::from_str(FIELDS).unwrap()).await;
    let r = app
        .post("/api/data/items", other.token(), json!({"k": "other"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let drop = "x'); DROP TABLE items; --";
    let bodies = [
        (
            json!({"where": { format!("name\"; {drop}"): 1 }}),
            Some("FILTER_UNKNOWN_FIELD"),
        ),
        (
            json!({"where": {"n": { format!("$eq'; {drop}"): 1 }}}),
            Some("FILTER_UNSUPPORTED_OPERATOR"),
        ),
        (
            json!({"where": { format!("meta.a'); {drop}"): 1 }}),
            Some("FILTER_INVALID_PATH"),
        ),
        (
            json!({"where": { format!("meta.{drop}"): 1 }}),
            Some("FILTER_INVALID_PATH"),
        ),
        (
            json!({"order": format!("name; {drop}")}),
            Some("FILTER_INVALID_SORT"),
        ),
        (
            json!({"order": { format!("n\" desc; {drop}"): "asc" }}),
            Some("FILTER_INVALID_SORT"),
        ),
        (
            json!({"order": "n desc; DROP"}),
            Some("FILTER_INVALID_SORT"),
        ),
        (
            json!({"select": [format!("k\" FROM items; {drop}")]}),
            Some("FILTER_INVALID_SELECT"),
        ),
        (json!({"where": {"name": drop}}), None),
        (json!({"where": {"name": {"$like": drop}}}), None),
        (
            json!({"where": {"name": {"$regex": drop}}}),
            Some("FILTER_INVALID_REGEX"),
        ),
        (
            json!({"where": {"name": {"$regex": "'; DROP TABLE items; --"}}}),
            None,
        ),
        (json!({"where": {"meta.a": drop}}), None),
        (json!({"where": {"meta": { drop: drop }}}), None),
        (json!({"where": {"name": {"$search": drop}}}), None),
        (json!({"where": {"tags": {"$any": [drop]}}}), None),
    ];
    for (body, code) in bodies {
        let r = find(&app, &t, body.clone()).await;
        match code {
            Some(c) => {
                err(&r, 400, c);
            }
            None => assert_eq!(okd(&r, 200), json!([]), "{body}"),
        }
        // No SQL text ever reaches the answer.
        assert!(
            !r.text.contains("SELECT ") && !r.text.contains("ns_tenant_"),
            "{}",
            r.text
        );
    }
    assert_eq!(matches(&app, &t, json!({})).await.len(), 5);
    let r = app
        .call("POST", "/api/find/items", other.token(), Some(json!({})))
        .await;
    assert_eq!(ks(&okd(&r, 200)), vec!["other".to_owned()]);
}

#[tokio::test]
async fn totals_forms_order_select_and_trash() {
    let (app, t) = setup().await;
    let r = find(&app, &t, json!({"count": true, "limit": 2})).await;
    let d = okd(&r, 200);
    assert_eq!(d["total"], 5);
    assert_eq!(d["data"].as_array().unwrap().len(), 2);
    let r = find(
        &app,
        &t,
        json!({"n": {"$gt": 0}, "includeTotal": true, "limit": 1, "order": "n desc"}),
    )
    .await;
    let d = okd(&r, 200);
    assert_eq!(
        (d["total"].clone(), d["data"][0]["k"].clone()),
        (json!(3), json!("k3"))
    );
    let r = find(&app, &t, json!({"include_total": true, "limit": 0})).await;
    assert_eq!(okd(&r, 200), json!({"data": [], "total": 5}));
    let r = find(&app, &t, json!({"where": {"count": 1}})).await;
    err(&r, 400, "FILTER_UNKNOWN_FIELD");
    for order in [
        json!("n desc"),
        json!(["n DESC"]),
        json!({"n": "descending"}),
        json!([{"field": "n", "sort": "desc"}]),
    ] {
        let r = find(&app, &t, json!({"order": order.clone(), "limit": 1})).await;
        // NULLs sort first in descending order (PostgreSQL's default).
        let first = okd(&r, 200)[0]["k"].clone();
        assert!(first == "k4" || first == "k3", "{order}: {first}");
    }
    let r = find(
        &app,
        &t,
        json!({"n": {"$ne": null}, "order": ["n asc"], "offset": 1, "limit": 2}),
    )
    .await;
    let d = okd(&r, 200);
    assert_eq!(
        d.as_array()
            .unwrap()
            .iter()
            .map(|r| r["k"].clone())
            .collect::<Vec<_>>(),
        vec![json!("k1"), json!("k5")]
    );
    let r = find(&app, &t, json!({"select": ["k"], "limit": 1})).await;
    let row = okd(&r, 200)[0].clone();
    let keys: Vec<&str> = row
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["id", "k"]);
    for sel in [json!("*"), json!(["*"]), json!([])] {
        let r = find(&app, &t, json!({"select": sel, "limit": 1})).await;
        assert!(okd(&r, 200)[0].get("meta").is_some());
    }
    // Trash k5: gone by default, back with include / only.
    let id = okd(&find(&app, &t, json!({"k": "k5"})).await, 200)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .call("DELETE", &format!("/api/data/items/{id}"), t.token(), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(matches(&app, &t, json!({})).await, k(&[1, 2, 3, 4]));
    let r = find(&app, &t, json!({"trashed": "only"})).await;
    assert_eq!(ks(&okd(&r, 200)), k(&[5]));
    let r = find(&app, &t, json!({"trashed": "include", "count": true})).await;
    assert_eq!(okd(&r, 200)["total"], 5);
}

#[tokio::test]
async fn saved_filters_and_data_where() {
    let (app, t) = setup().await;
    let r = app
        .post(
            "/api/data/filters",
            t.token(),
            json!({"model_name": "items", "name": "positive", "where": {"n": {"$gt": 0}},
                   "order": ["n asc"], "limit": 2, "select": ["k", "n"]}),
        )
        .await;
    let fid = okd(&r, 201)["id"].as_str().unwrap().to_owned();
    let r = app.get("/api/find/items/positive", t.token()).await;
    let d = okd(&r, 200);
    assert_eq!(
        d.as_array()
            .unwrap()
            .iter()
            .map(|r| r["k"].clone())
            .collect::<Vec<_>>(),
        vec![json!("k1"), json!("k5")]
    );
    assert!(d[0].get("meta").is_none());
    let r = app
        .get(&format!("/api/find/items/{fid}?limit=10"), t.token())
        .await;
    assert_eq!(okd(&r, 200).as_array().unwrap().len(), 3);
    let r = app
        .get("/api/find/items/positive?offset=1", t.token())
        .await;
    assert_eq!(okd(&r, 200)[0]["k"], "k5");
    let r = app.get("/api/find/items/positive?limit=x", t.token()).await;
    err(&r, 400, "FILTER_INVALID_LIMIT");
    let r = app.get("/api/find/items/nope", t.token()).await;
    err(&r, 404, "FILTER_NOT_FOUND");
    let r = app.get("/api/find/other/positive", t.token()).await;
    err(&r, 404, "MODEL_NOT_FOUND");

    // The same language on /api/data: list, bulk PATCH and DELETE by where.
    let w = enc(r#"{"$or":[{"n":{"$lt":0}},{"meta.theme":"dark"}]}"#);
    let r = app
        .get(&format!("/api/data/items?where={w}"), t.token())
        .await;
    assert_eq!(ks(&okd(&r, 200)), k(&[1, 2]));
    let w = enc(r#"{"tags":{"$any":["b"]}}"#);
    let r = app
        .call(
            "PATCH",
            &format!("/api/data/items?where={w}"),
            t.token(),
            Some(json!({"flag": true})),
        )
        .await;
    assert_eq!(ks(&okd(&r, 200)), k(&[1, 3]));
    let w = enc(r#"{"name":{"$regex":"^[AB]"}}"#);
    let r = app
        .call(
            "DELETE",
            &format!("/api/data/items?where={w}"),
            t.token(),
            None,
        )
        .await;
    assert_eq!(ks(&okd(&r, 200)), k(&[2]));
    let w = enc(r#"{"name":{"$regex":"["}}"#);
    let r = app
        .get(&format!("/api/data/items?where={w}"), t.token())
        .await;
    assert_eq!(
        err(&r, 400, "FILTER_INVALID_REGEX")["path"],
        "where.name.$regex"
    );
    assert_eq!(matches(&app, &t, json!({})).await, k(&[1, 3, 4, 5]));
    for m in ["PATCH", "DELETE"] {
        let body = (m == "PATCH").then(|| json!({"flag": false}));
        let r = app
            .call(m, &format!("/api/data/items?where={w}"), t.token(), body)
            .await;
        assert_eq!(
            err(&r, 400, "FILTER_INVALID_REGEX")["path"],
            "where.name.$regex",
            "{m}"
        );
    }
    assert_eq!(matches(&app, &t, json!({})).await, k(&[1, 3, 4, 5]));
    let r = find(&app, &t, json!({"name": "a\u{0}b"})).await;
    assert_eq!(err(&r, 400, "FILTER_INVALID_VALUE")["path"], "where.name");
}

/// A6.6: with one query slot per tenant, a find waits while another holds the slot (here:
/// blocked on a table lock taken behind the API), then answers 429 with `scope:"query"`;
/// another tenant is not affected.
#[tokio::test]
async fn query_slots_per_tenant() {
    let app = spawn_app_with(&[("ABBOTIK_QUERY_CONCURRENCY_PER_TENANT", "1")]).await;
    let t = TestTenant::new(&app).await;
    let other = TestTenant::new(&app).await;
    for tt in [&t, &other] {
        let r = app
            .post(
                "/api/describe/items",
                tt.token(),
                json!({"fields":[{"field_name":"k","type":"text"}]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let db = lock_model_table(&t.name, "items").await;
    let held = find(&app, &t, json!({}));
    let refused = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let r = find(&app, &t, json!({})).await;
        let o = app
            .call("POST", "/api/find/items", other.token(), Some(json!({})))
            .await;
        db.batch_execute("COMMIT").await.unwrap();
        (r, o)
    };
    let (first, (second, o)) = tokio::join!(held, refused);
    assert_eq!(okd(&first, 200), json!([]));
    assert_eq!(err(&second, 429, "RATE_LIMITED")["scope"], "query");
    assert_eq!(okd(&o, 200), json!([]));
}

/// A6.6: a find that runs past the statement timeout (here: blocked on a lock taken behind the
/// API) answers `400 FILTER_QUERY_TIMEOUT` with a path.
#[tokio::test]
async fn statement_timeout_is_a_filter_error() {
    let app = spawn_app_with(&[("ABBOTIK_STATEMENT_TIMEOUT_MS", "2000")]).await;
    let t = TestTenant::new(&app).await;
    let r = app
        .post(
            "/api/describe/items",
            t.token(),
            json!({"fields":[{"field_name":"k","type":"text"}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let db = lock_model_table(&t.name, "items").await;
    let r = find(&app, &t, json!({"k": {"$regex": "a"}})).await;
    db.batch_execute("COMMIT").await.unwrap();
    assert_eq!(err(&r, 400, "FILTER_QUERY_TIMEOUT")["path"], "where");
}
