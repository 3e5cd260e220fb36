//! Describe (A4): every route, every field type and property, the real DDL, the error paths,
//! one-transaction writes, and the metadata cache across two pods.

use abbotik_testkit::{err, spawn_app, TestApp, TestTenant, DEFAULT_TEST_DATABASE_URL};
use serde_json::{json, Value};

fn schema(t: &TestTenant) -> String {
    format!("\"ns_tenant_{}\"", t.name)
}

async fn put(app: &TestApp, path: &str, t: &TestTenant, body: Value) -> abbotik_testkit::Resp {
    app.call("PUT", path, t.token(), Some(body)).await
}

async fn del(app: &TestApp, path: &str, t: &TestTenant) -> abbotik_testkit::Resp {
    app.call("DELETE", path, t.token(), None).await
}

async fn columns(
    c: &tokio_postgres::Client,
    t: &TestTenant,
    table: &str,
) -> Vec<(String, String, bool, Option<String>)> {
    c.query(
        "SELECT column_name::text, data_type::text, is_nullable = 'YES', column_default::text
         FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
        &[&format!("ns_tenant_{}", t.name), &table],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect()
}

async fn indexes(c: &tokio_postgres::Client, t: &TestTenant, table: &str) -> Vec<(String, String)> {
    c.query(
        "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 ORDER BY 1",
        &[&format!("ns_tenant_{}", t.name), &table],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

#[tokio::test]
async fn model_lifecycle_with_inline_fields() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;

    let r = app.get("/api/describe", t.token()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["data"],
        json!(["fields", "filters", "models", "tracked", "users"])
    );

    let r = app
        .post(
            "/api/describe/customers",
            t.token(),
            json!({"fields":[{"field_name":"name","type":"text","required":true}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["data"]["fields"][0]["field_name"], "name");

    // The contract's example, verbatim.
    let r = app
        .post(
            "/api/describe/orders",
            t.token(),
            json!({"status":"active","description":"Customer orders",
             "fields":{"number":{"type":"text","required":true,"unique":true},
                       "total":{"type":"decimal","minimum":0,"tracked":true},
                       "state":{"type":"text","enum":["new","paid","shipped"],"default":"new","index":true},
                       "meta":{"type":"jsonb"},
                       "customer_id":{"type":"uuid","relationship_type":"owned","related_model":"customers","relationship_name":"orders"}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let d = &r.body["data"];
    assert_eq!(d["model_name"], "orders");
    assert_eq!(d["status"], "active");
    assert_eq!(d["description"], "Customer orders");
    for k in ["sudo", "frozen", "immutable", "external", "passthrough"] {
        assert_eq!(d[k], false, "{k}");
    }
    let names: Vec<&str> = d["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["number", "total", "state", "meta", "customer_id"]);
    let number = &d["fields"][0];
    let expected_keys = [
        "model_name",
        "field_name",
        "type",
        "required",
        "default_value",
        "description",
        "minimum",
        "maximum",
        "pattern",
        "enum_values",
        "is_array",
        "immutable",
        "sudo",
        "unique",
        "index",
        "searchable",
        "tracked",
        "transform",
        "relationship_type",
        "related_model",
        "related_field",
        "relationship_name",
        "cascade_delete",
        "created_at",
        "updated_at",
    ];
    let keys: Vec<&String> = number.as_object().unwrap().keys().collect();
    assert_eq!(keys, expected_keys);
    assert_eq!(number["unique"], true);
    assert_eq!(number["required"], true);
    let ts = d["created_at"].as_str().unwrap();
    assert!(ts.ends_with('Z') && ts.len() == 27, "{ts}");
    assert_eq!(d["fields"][1]["minimum"], json!(0));
    assert_eq!(d["fields"][1]["tracked"], true);
    assert_eq!(
        d["fields"][2]["enum_values"],
        json!(["new", "paid", "shipped"])
    );
    assert_eq!(d["fields"][2]["default_value"], "new");
    assert_eq!(d["fields"][4]["relationship_type"], "owned");
    assert_eq!(d["fields"][4]["related_field"], "id");

    let r = app.get("/api/describe", t.token()).await;
    assert_eq!(
        r.body["data"],
        json!([
            "customers",
            "fields",
            "filters",
            "models",
            "orders",
            "tracked",
            "users"
        ])
    );

    let r = app.get("/api/describe/orders", t.token()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"]["fields"].as_array().unwrap().len(), 5);
    let r = app.get("/api/describe/orders/fields", t.token()).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 5);
    let r = app
        .get("/api/describe/orders/fields/state", t.token())
        .await;
    assert_eq!(r.body["data"]["index"], true);
    let r = app.get("/api/describe/orders?unwrap", t.token()).await;
    assert_eq!(r.body["model_name"], "orders");

    // PUT model: partial, null clears description, booleans null = absent, no fields in answer.
    let r = put(
        &app,
        "/api/describe/orders",
        &t,
        json!({"frozen":true,"description":null,"sudo":null}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["frozen"], true);
    assert_eq!(r.body["data"]["sudo"], false);
    assert_eq!(r.body["data"]["description"], Value::Null);
    assert!(r.body["data"].get("fields").is_none());
    let r = put(
        &app,
        "/api/describe/orders",
        &t,
        json!({"model_name":"orders","status":"pending"}),
    )
    .await;
    assert_eq!(r.body["data"]["status"], "pending");
    assert_eq!(r.body["data"]["frozen"], true);

    // Delete: refused while orders targets customers.
    let d = err(
        &del(&app, "/api/describe/customers", &t).await,
        409,
        "MODEL_IN_USE",
    );
    assert_eq!(d["fields"], json!(["orders.customer_id"]));
    let r = del(&app, "/api/describe/orders", &t).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["data"],
        json!({"model_name":"orders","dropped":true})
    );
    err(
        &app.get("/api/describe/orders", t.token()).await,
        404,
        "MODEL_NOT_FOUND",
    );
    let r = del(&app, "/api/describe/customers", &t).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let c = abbotik_testkit::test_db().await;
    assert!(columns(&c, &t, "orders").await.is_empty());
    let n: i64 = c
        .query_one(
            &format!(
                "SELECT count(*) FROM {}.\"fields\" WHERE model_name IN ('orders','customers')",
                schema(&t)
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn every_type_and_property_makes_real_ddl() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let r = app
        .post("/api/describe/parents", t.token(), json!({}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .post(
            "/api/describe/things",
            t.token(),
            json!({"fields":[
                {"field_name":"t","type":"text","default":"it's \\ fine","pattern":"^it","min":1,"max":20,"transform":"trim"},
                {"field_name":"i","type":"integer","default":-5,"required":true,"min":-10,"max":10},
                {"field_name":"b","type":"bigserial"},
                {"field_name":"d","type":"numeric","default":"12.50"},
                {"field_name":"bo","type":"boolean","default":false},
                {"field_name":"ts","type":"timestamp","default":"2026-01-02T03:04:05+01:00"},
                {"field_name":"da","type":"date","default":"2026-02-28"},
                {"field_name":"u","type":"uuid","default":"0C3E5B5E-8A4F-4A53-9D2C-1F6F3C1A2B10"},
                {"field_name":"j","type":"jsonb","default":{"a":["x'y"]}},
                {"field_name":"bi","type":"binary","default":"AAEC/w=="},
                {"field_name":"ta","type":"text[]","default":["a","b"],"enum":["a","b","c"]},
                {"field_name":"ia","type":"integer[]","default":[]},
                {"field_name":"na","type":"decimal[]"},
                {"field_name":"ua","type":"uuid[]"},
                {"field_name":"un","type":"text","unique":true,"index":true,"searchable":true},
                {"field_name":"pid","type":"uuid","relationship_type":"referenced","related_model":"parents"}
            ]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let f = &r.body["data"]["fields"];
    assert_eq!(f[3]["type"], "decimal");
    assert_eq!(f[3]["default_value"].to_string(), "12.50");
    assert_eq!(f[5]["default_value"], "2026-01-02T02:04:05.000000Z");
    assert_eq!(
        f[7]["default_value"],
        "0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10"
    );
    assert_eq!(f[10]["is_array"], true);
    assert_eq!(f[10]["type"], "text[]");
    assert_eq!(f[0]["transform"], "trim");
    assert_eq!(f[0]["minimum"], 1);

    let c = abbotik_testkit::test_db().await;
    let cols = columns(&c, &t, "things").await;
    let by = |n: &str| {
        cols.iter()
            .find(|c| c.0 == n)
            .cloned()
            .unwrap_or_else(|| panic!("column {n}"))
    };
    for sys in [
        "id",
        "access_read",
        "access_edit",
        "access_full",
        "access_deny",
        "created_at",
        "updated_at",
        "trashed_at",
        "deleted_at",
    ] {
        by(sys);
    }
    assert_eq!(by("t").1, "text");
    assert_eq!(by("i").1, "integer");
    assert!(!by("i").2, "required → NOT NULL");
    assert_eq!(by("b").1, "bigint");
    assert_eq!(by("d").1, "numeric");
    assert_eq!(by("bo").1, "boolean");
    assert_eq!(by("ts").1, "timestamp with time zone");
    assert_eq!(by("da").1, "date");
    assert_eq!(by("u").1, "uuid");
    assert_eq!(by("j").1, "jsonb");
    assert_eq!(by("bi").1, "bytea");
    assert_eq!(by("ta").1, "ARRAY");
    // Defaults really work: insert a bare row and read it back.
    c.batch_execute(&format!(
        "INSERT INTO {}.\"things\" DEFAULT VALUES",
        schema(&t)
    ))
    .await
    .unwrap();
    let row = c
        .query_one(
            &format!(
                "SELECT t, i, d::text, bo, ts = '2026-01-02T02:04:05Z', da::text, u::text, j::text, encode(bi, 'base64'), ta, ia, b
                 FROM {}.\"things\"",
                schema(&t)
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "it's \\ fine");
    assert_eq!(row.get::<_, i32>(1), -5);
    assert_eq!(row.get::<_, String>(2), "12.50");
    assert!(!row.get::<_, bool>(3));
    assert!(row.get::<_, bool>(4));
    assert_eq!(row.get::<_, String>(5), "2026-02-28");
    assert_eq!(
        row.get::<_, String>(6),
        "0c3e5b5e-8a4f-4a53-9d2c-1f6f3c1a2b10"
    );
    assert_eq!(row.get::<_, String>(7), r#"{"a": ["x'y"]}"#);
    assert_eq!(row.get::<_, String>(8), "AAEC/w==");
    assert_eq!(row.get::<_, Vec<String>>(9), vec!["a", "b"]);
    assert!(row.get::<_, Vec<i32>>(10).is_empty());
    assert_eq!(row.get::<_, i64>(11), 1);

    // Index names: kind + 20 hex of sha256("things.un"); unique is partial; searchable is GIN.
    let idx = indexes(&c, &t, "things").await;
    let find = |p: &str| {
        idx.iter()
            .find(|(n, _)| n.starts_with(p))
            .cloned()
            .unwrap_or_else(|| panic!("{p}: {idx:?}"))
    };
    let (uq, uqdef) = find("uq_");
    assert_eq!(uq.len(), 23);
    assert!(
        uqdef.contains("UNIQUE") && uqdef.contains("WHERE (deleted_at IS NULL)"),
        "{uqdef}"
    );
    let (idxn, _) = find("idx_");
    assert_eq!(&idxn[4..], &uq[3..], "same hash for the same field");
    let (_, fts) = find("fts_");
    assert!(
        fts.contains("gin") && fts.contains("to_tsvector('english'"),
        "{fts}"
    );
    let (_, rel) = find("rel_");
    assert!(rel.contains("(pid)"), "{rel}");
    // No database FK for relationships.
    let fks: i64 = c
        .query_one(
            "SELECT count(*) FROM information_schema.table_constraints WHERE table_schema = $1 AND constraint_type = 'FOREIGN KEY'",
            &[&format!("ns_tenant_{}", t.name)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(fks, 0);

    // Toggling index properties off drops the recorded indexes; on creates them again.
    let r = put(
        &app,
        "/api/describe/things/fields/un",
        &t,
        json!({"unique":false,"index":false,"searchable":false}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let idx = indexes(&c, &t, "things").await;
    assert!(
        idx.iter().all(|(n, _)| !n.starts_with("uq_")
            && !n.starts_with("idx_")
            && !n.starts_with("fts_")),
        "{idx:?}"
    );
    let r = put(
        &app,
        "/api/describe/things/fields/pid",
        &t,
        json!({"relationship_type":null}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["related_model"], Value::Null);
    assert!(indexes(&c, &t, "things")
        .await
        .iter()
        .all(|(n, _)| !n.starts_with("rel_")));

    // Defaults: change and drop.
    let r = put(
        &app,
        "/api/describe/things/fields/i",
        &t,
        json!({"default":3}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(by_default(&c, &t, "things", "i")
        .await
        .unwrap()
        .contains('3'));
    let r = put(
        &app,
        "/api/describe/things/fields/i",
        &t,
        json!({"default_value":null,"minimum":null}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["default_value"], Value::Null);
    assert_eq!(r.body["data"]["minimum"], Value::Null);
    assert_eq!(r.body["data"]["maximum"], 10);
    assert!(by_default(&c, &t, "things", "i").await.is_none());
    // required off → DROP NOT NULL.
    let r = put(
        &app,
        "/api/describe/things/fields/i",
        &t,
        json!({"required":false}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(columns(&c, &t, "things")
        .await
        .iter()
        .any(|c| c.0 == "i" && c.2));

    // Delete a field: column gone, metadata gone.
    let r = del(&app, "/api/describe/things/fields/un", &t).await;
    assert_eq!(
        r.body["data"],
        json!({"model_name":"things","field_name":"un","dropped":true})
    );
    assert!(columns(&c, &t, "things").await.iter().all(|c| c.0 != "un"));
    err(
        &app.get("/api/describe/things/fields/un", t.token()).await,
        404,
        "FIELD_NOT_FOUND",
    );
}

async fn by_default(
    c: &tokio_postgres::Client,
    t: &TestTenant,
    table: &str,
    col: &str,
) -> Option<String> {
    columns(c, t, table)
        .await
        .into_iter()
        .find(|c| c.0 == col)
        .and_then(|c| c.3)
}

/// Inserts rows straight into a model table (the data surface is tested elsewhere).
async fn insert(
    c: &tokio_postgres::Client,
    t: &TestTenant,
    table: &str,
    cols: &str,
    values: &[&str],
) -> Vec<String> {
    let mut ids = Vec::new();
    for v in values {
        let row = c
            .query_one(
                &format!(
                    "INSERT INTO {}.\"{table}\" ({cols}) VALUES ({v}) RETURNING id::text",
                    schema(t)
                ),
                &[],
            )
            .await
            .unwrap();
        ids.push(row.get(0));
    }
    ids
}

#[tokio::test]
async fn existing_rows_conflicts_and_all_or_nothing() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let c = abbotik_testkit::test_db().await;
    let r = app
        .post(
            "/api/describe/items",
            t.token(),
            json!({"fields":{"code":{"type":"text"},"qty":{"type":"text"},"note":{"type":"text"}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let ids = insert(
        &c,
        &t,
        "items",
        "code, qty, note",
        &["'a', '1', NULL", "'a', 'x', 'n'", "'b', '3', NULL"],
    )
    .await;

    // Type change with a value that does not convert.
    let d = err(
        &put(
            &app,
            "/api/describe/items/fields/qty",
            &t,
            json!({"type":"integer"}),
        )
        .await,
        409,
        "FIELD_CHANGE_CONFLICT",
    );
    assert_eq!(d["reason"], "cast_failed");
    assert_eq!(d["sample_ids"], json!([ids[1]]));
    assert_eq!(
        app.get("/api/describe/items/fields/qty", t.token())
            .await
            .body["data"]["type"],
        "text"
    );
    // Fix the row, then the cast works and converts the data.
    c.batch_execute(&format!(
        "UPDATE {}.\"items\" SET qty = '2' WHERE qty = 'x'",
        schema(&t)
    ))
    .await
    .unwrap();
    let r = put(
        &app,
        "/api/describe/items/fields/qty",
        &t,
        json!({"type":"integer","minimum":0}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["type"], "integer");
    assert!(columns(&c, &t, "items")
        .await
        .iter()
        .any(|c| c.0 == "qty" && c.1 == "integer"));
    // integer → boolean is a direct cast; text → uuid goes through text input.
    let r = put(
        &app,
        "/api/describe/items/fields/qty",
        &t,
        json!({"type":"decimal"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Unique with duplicates among live rows.
    let d = err(
        &put(
            &app,
            "/api/describe/items/fields/code",
            &t,
            json!({"unique":true}),
        )
        .await,
        409,
        "FIELD_CHANGE_CONFLICT",
    );
    assert_eq!(d["reason"], "duplicates");
    let mut got: Vec<String> = d["sample_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    got.sort();
    let mut want = vec![ids[0].clone(), ids[1].clone()];
    want.sort();
    assert_eq!(got, want);
    // Purged rows do not count for unique (WHERE deleted_at IS NULL); trashed rows do.
    c.batch_execute(&format!(
        "UPDATE {}.\"items\" SET deleted_at = now() WHERE id = '{}'",
        schema(&t),
        ids[1]
    ))
    .await
    .unwrap();
    let r = put(
        &app,
        "/api/describe/items/fields/code",
        &t,
        json!({"unique":true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Required with nulls and no default → conflict; with a default → nulls are filled.
    let d = err(
        &put(
            &app,
            "/api/describe/items/fields/note",
            &t,
            json!({"required":true}),
        )
        .await,
        409,
        "FIELD_CHANGE_CONFLICT",
    );
    assert_eq!(d["reason"], "nulls");
    assert_eq!(d["sample_ids"].as_array().unwrap().len(), 2);
    let r = put(
        &app,
        "/api/describe/items/fields/note",
        &t,
        json!({"required":true,"default":"-"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let nulls: i64 = c
        .query_one(
            &format!(
                "SELECT count(*) FROM {}.\"items\" WHERE note IS NULL",
                schema(&t)
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(nulls, 0);

    // Adding a required field without default to a non-empty table.
    let d = err(
        &app.post(
            "/api/describe/items/fields/must",
            t.token(),
            json!({"type":"text","required":true}),
        )
        .await,
        409,
        "FIELD_CHANGE_CONFLICT",
    );
    assert_eq!(d["reason"], "table_not_empty");
    assert!(!d["sample_ids"].as_array().unwrap().is_empty());
    // With a default it works and existing rows get it.
    let r = app
        .post(
            "/api/describe/items/fields/must",
            t.token(),
            json!({"type":"integer","required":true,"default":7}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // A new unique field whose default duplicates across rows.
    let d = err(
        &app.post(
            "/api/describe/items/fields/tag",
            t.token(),
            json!({"type":"text","default":"x","unique":true}),
        )
        .await,
        409,
        "FIELD_CHANGE_CONFLICT",
    );
    assert_eq!(d["reason"], "duplicates");
    assert!(
        columns(&c, &t, "items").await.iter().all(|c| c.0 != "tag"),
        "rolled back"
    );

    // One transaction per request: the first change of the array is undone when the second fails.
    let before = app.get("/api/describe/items", t.token()).await.body["data"].clone();
    let r = put(
        &app,
        "/api/describe/items/fields",
        &t,
        json!([{"field_name":"code","description":"changed","index":true},{"field_name":"code","type":"uuid"}]),
    )
    .await;
    let d = err(&r, 409, "FIELD_CHANGE_CONFLICT");
    assert_eq!(d["reason"], "cast_failed");
    let after = app.get("/api/describe/items", t.token()).await.body["data"].clone();
    assert_eq!(before, after);
    assert!(indexes(&c, &t, "items")
        .await
        .iter()
        .all(|(n, _)| !n.starts_with("idx_")));
    // Same for POST …/fields: a bad second field leaves no first column.
    let r = app
        .post(
            "/api/describe/items/fields",
            t.token(),
            json!([{"field_name":"ok1","type":"text"},{"field_name":"bad","type":"money"}]),
        )
        .await;
    err(&r, 400, "FIELD_TYPE_INVALID");
    assert!(columns(&c, &t, "items").await.iter().all(|c| c.0 != "ok1"));
    // And a successful batch.
    let r = app
        .post(
            "/api/describe/items/fields",
            t.token(),
            json!([{"field_name":"ok1","type":"text"},{"field_name":"ok2","type":"date"}]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);
    let r = put(
        &app,
        "/api/describe/items/fields",
        &t,
        json!([{"field_name":"ok1","searchable":true},{"field_name":"ok2","required":false}]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"][0]["searchable"], true);
    let names: Vec<&str> = app.get("/api/describe/items/fields", t.token()).await.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field_name"].as_str().unwrap().to_owned().leak() as &str)
        .collect();
    assert_eq!(names, ["code", "qty", "note", "must", "ok1", "ok2"]);
}

#[tokio::test]
async fn reads_need_read_and_writes_need_sudo() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let r = app
        .post(
            "/api/describe/notes",
            t.token(),
            json!({"fields":{"body":{"type":"text"}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    err(
        &app.get("/api/describe", None).await,
        401,
        "AUTH_TOKEN_REQUIRED",
    );
    err(
        &app.post("/api/describe/x", None, json!({})).await,
        401,
        "AUTH_TOKEN_REQUIRED",
    );

    let full = t
        .add_user(&app, "fuller", "full")
        .await
        .1
        .expect("full user logs in");
    let tok = Some(full.as_str());
    assert_eq!(app.get("/api/describe", tok).await.status, 200);
    assert_eq!(app.get("/api/describe/notes", tok).await.status, 200);
    assert_eq!(app.get("/api/describe/notes/fields", tok).await.status, 200);
    assert_eq!(
        app.get("/api/describe/notes/fields/body", tok).await.status,
        200
    );
    let writes: Vec<(&str, &str, Option<Value>)> = vec![
        ("POST", "/api/describe/other", Some(json!({}))),
        ("PUT", "/api/describe/notes", Some(json!({"frozen":true}))),
        ("DELETE", "/api/describe/notes", None),
        (
            "POST",
            "/api/describe/notes/fields",
            Some(json!([{"field_name":"x","type":"text"}])),
        ),
        (
            "PUT",
            "/api/describe/notes/fields",
            Some(json!([{"field_name":"body","index":true}])),
        ),
        (
            "POST",
            "/api/describe/notes/fields/x",
            Some(json!({"type":"text"})),
        ),
        (
            "PUT",
            "/api/describe/notes/fields/body",
            Some(json!({"index":true})),
        ),
        ("DELETE", "/api/describe/notes/fields/body", None),
    ];
    for (m, p, b) in writes {
        let r = app.call(m, p, tok, b).await;
        err(&r, 403, "AUTH_SUDO_REQUIRED");
    }
    // A sudo token of a full user may write.
    let r = app.post("/api/user/sudo", tok, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sudo = r.body["data"]["sudo_token"].as_str().unwrap().to_owned();
    let r = app
        .post("/api/describe/other", Some(&sudo), json!({}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    if let Some(deny) = t.add_user(&app, "denied", "deny").await.1 {
        let r = app.get("/api/describe", Some(&deny)).await;
        assert_eq!(r.status, 403, "{}", r.text);
    }
}

#[tokio::test]
async fn names_bodies_and_protection() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let post = |p: &'static str, b: Value| {
        let app = &app;
        let t = &t;
        async move { app.post(p, t.token(), b).await }
    };
    // Name rules (A1.8).
    for bad in [
        "Orders",
        "1x",
        "a__b",
        "pg_x",
        "sql_x",
        "sys_x",
        "select",
        "credentials",
        "api_keys",
        "fs_nodes",
    ] {
        let r = app
            .post(&format!("/api/describe/{bad}"), t.token(), json!({}))
            .await;
        err(&r, 400, "MODEL_NAME_INVALID");
    }
    let long = "a".repeat(64);
    err(
        &app.post(&format!("/api/describe/{long}"), t.token(), json!({}))
            .await,
        400,
        "MODEL_NAME_INVALID",
    );
    assert_eq!(
        app.post(
            &format!("/api/describe/{}", "a".repeat(63)),
            t.token(),
            json!({})
        )
        .await
        .status,
        201
    );
    for sys in ["users", "models", "fields", "filters", "tracked"] {
        err(
            &app.post(&format!("/api/describe/{sys}"), t.token(), json!({}))
                .await,
            403,
            "MODEL_SYSTEM_PROTECTED",
        );
    }
    for bad in ["id", "created_at", "access_read", "Bad", "order", "a__b"] {
        let r = app
            .post(
                "/api/describe/m1",
                t.token(),
                json!({"fields":{bad:{"type":"text"}}}),
            )
            .await;
        err(&r, 400, "FIELD_NAME_INVALID");
    }
    err(
        &app.get("/api/describe/m1", t.token()).await,
        404,
        "MODEL_NOT_FOUND",
    );

    // Model body rules.
    let d = err(
        &post("/api/describe/m1", json!({"model_name":"m2"})).await,
        400,
        "MODEL_NAME_MISMATCH",
    );
    assert_eq!(d["model"], "m1");
    let r = app
        .post(
            "/api/describe/m1?force=true",
            t.token(),
            json!({"model_name":"m2","description":"d"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["data"]["model_name"], "m1");
    err(
        &post("/api/describe/m1", json!({})).await,
        409,
        "MODEL_EXISTS",
    );
    err(
        &post("/api/describe/m3", json!({"status":"system"})).await,
        400,
        "VALIDATION_FIELD_INVALID",
    );
    err(
        &post("/api/describe/m3", json!({"sudo":"yes"})).await,
        400,
        "VALIDATION_FIELD_INVALID",
    );
    err(
        &post("/api/describe/m3", json!([1])).await,
        400,
        "VALIDATION_BODY_NOT_OBJECT",
    );
    err(
        &post("/api/describe/m3", json!({"fields":"x"})).await,
        400,
        "VALIDATION_FIELD_INVALID",
    );
    err(
        &post(
            "/api/describe/m3",
            json!({"fields":{"a":{"type":"text"},"b":{"type":"text","bogus":1}}}),
        )
        .await,
        400,
        "VALIDATION_FIELD_INVALID",
    );
    err(
        &post("/api/describe/m3", json!({"fields":[{"type":"text"}]})).await,
        400,
        "VALIDATION_FIELD_MISSING",
    );
    err(&post("/api/describe/m3", json!({"fields":[{"field_name":"a","type":"text"},{"field_name":"a","type":"integer"}]})).await, 409, "FIELD_EXISTS");
    err(
        &post("/api/describe/m3", json!({"fields":{"a":{}}})).await,
        400,
        "VALIDATION_FIELD_MISSING",
    );
    // An empty POST body creates a model with defaults.
    let r = app.call("POST", "/api/describe/m3", t.token(), None).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["data"]["fields"], json!([]));

    err(
        &put(&app, "/api/describe/m1", &t, json!({})).await,
        400,
        "MODEL_NO_UPDATES",
    );
    err(
        &app.call("PUT", "/api/describe/m1", t.token(), None).await,
        400,
        "MODEL_NO_UPDATES",
    );
    err(
        &put(&app, "/api/describe/m1", &t, json!({"model_name":"m1"})).await,
        400,
        "MODEL_NO_UPDATES",
    );
    let d = err(
        &put(
            &app,
            "/api/describe/m1",
            &t,
            json!({"model_name":"zz","frozen":true}),
        )
        .await,
        400,
        "VALIDATION_FIELD_INVALID",
    );
    assert_eq!(d["field"], "model_name");
    err(
        &put(&app, "/api/describe/m1", &t, json!({"fields":{}})).await,
        400,
        "VALIDATION_FIELD_INVALID",
    );
    err(
        &put(&app, "/api/describe/nope", &t, json!({"frozen":true})).await,
        404,
        "MODEL_NOT_FOUND",
    );
    err(
        &del(&app, "/api/describe/nope", &t).await,
        404,
        "MODEL_NOT_FOUND",
    );

    // Field type and constraint errors.
    let d = err(
        &post("/api/describe/m1/fields/f", json!({"type":"money"})).await,
        400,
        "FIELD_TYPE_INVALID",
    );
    assert!(d["valid_types"]
        .as_array()
        .unwrap()
        .contains(&json!("decimal")));
    err(
        &post("/api/describe/m1/fields/f", json!({})).await,
        400,
        "VALIDATION_FIELD_MISSING",
    );
    let cases = [
        (json!({"type":"text","default":5}), "default_value"),
        (
            json!({"type":"integer","min":1,"default":0}),
            "default_value",
        ),
        (
            json!({"type":"text","enum":["a"],"default":"b"}),
            "default_value",
        ),
        (
            json!({"type":"text","pattern":"^x","default":"y"}),
            "default_value",
        ),
        (json!({"type":"text","pattern":"(("}), "pattern"),
        (json!({"type":"boolean","max":1}), "maximum"),
        (json!({"type":"integer","min":3,"max":1}), "minimum"),
        (json!({"type":"text","enum":[1]}), "enum_values"),
        (json!({"type":"integer","transform":"trim"}), "transform"),
        (json!({"type":"text","transform":"reverse"}), "transform"),
        (json!({"type":"bigserial","default":1}), "default_value"),
    ];
    for (body, prop) in cases {
        let d = err(
            &post("/api/describe/m1/fields/f", body.clone()).await,
            400,
            "FIELD_CONSTRAINT_INVALID",
        );
        assert_eq!(d["property"], prop, "{body}");
    }
    // Relationship errors.
    for body in [
        json!({"type":"text","relationship_type":"referenced","related_model":"m3"}),
        json!({"type":"uuid","relationship_type":"referenced","related_model":"nope"}),
        json!({"type":"uuid","relationship_type":"referenced","related_model":"credentials"}),
        json!({"type":"uuid","relationship_type":"owned","related_model":"m3"}),
        json!({"type":"uuid","relationship_type":"owned","related_model":"m3","relationship_name":"kids","related_field":"name"}),
        json!({"type":"uuid","related_model":"m3"}),
        json!({"type":"uuid","relationship_type":"sibling","related_model":"m3"}),
        json!({"type":"uuid","relationship_type":"referenced","related_model":"m3","cascade_delete":true}),
    ] {
        err(
            &post("/api/describe/m1/fields/f", body.clone()).await,
            400,
            "FIELD_RELATIONSHIP_INVALID",
        );
    }
    let r = post("/api/describe/m1/fields/f", json!({"type":"uuid","relationship_type":"owned","related_model":"m3","relationship_name":"kids","cascade_delete":true})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    // relationship_name is unique per parent.
    let r = post(
        "/api/describe/m4",
        json!({"fields":{"p1":{"type":"uuid","relationship_type":"referenced","related_model":"m4","relationship_name":"kids"},
                         "p2":{"type":"uuid","relationship_type":"referenced","related_model":"m4","relationship_name":"kids"}}}),
    )
    .await;
    err(&r, 400, "FIELD_RELATIONSHIP_INVALID");
    // A model may point at itself (trees).
    let r = post(
        "/api/describe/m4",
        json!({"fields":{"parent_id":{"type":"uuid","relationship_type":"owned","related_model":"m4","relationship_name":"children","cascade_delete":true}}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        del(&app, "/api/describe/m4", &t).await.status,
        200,
        "self-reference does not block delete"
    );
    let r = post("/api/describe/m1/fields/g", json!({"type":"uuid","relationship_type":"owned","related_model":"m3","relationship_name":"kids"})).await;
    err(&r, 400, "FIELD_RELATIONSHIP_INVALID");
    err(
        &post("/api/describe/m1/fields/f", json!({"type":"text"})).await,
        409,
        "FIELD_EXISTS",
    );
    err(
        &post(
            "/api/describe/m1/fields/bad_name_",
            json!({"type":"text","field_name":"other"}),
        )
        .await,
        400,
        "VALIDATION_FIELD_INVALID",
    );
    err(
        &post(
            "/api/describe/m1/fields",
            json!({"field_name":"x","type":"text"}),
        )
        .await,
        400,
        "VALIDATION_BODY_NOT_ARRAY",
    );
    err(
        &put(&app, "/api/describe/m1/fields", &t, json!({})).await,
        400,
        "VALIDATION_BODY_NOT_ARRAY",
    );
    err(
        &put(
            &app,
            "/api/describe/m1/fields",
            &t,
            json!([{"field_name":"zz","index":true}]),
        )
        .await,
        404,
        "FIELD_NOT_FOUND",
    );
    err(
        &put(
            &app,
            "/api/describe/m1/fields/zz",
            &t,
            json!({"index":true}),
        )
        .await,
        404,
        "FIELD_NOT_FOUND",
    );
    err(
        &del(&app, "/api/describe/m1/fields/zz", &t).await,
        404,
        "FIELD_NOT_FOUND",
    );
    let d = err(
        &put(
            &app,
            "/api/describe/m1/fields/f",
            &t,
            json!({"field_name":"g"}),
        )
        .await,
        400,
        "VALIDATION_FIELD_INVALID",
    );
    assert_eq!(d["field"], "field_name");
    err(
        &put(
            &app,
            "/api/describe/m1/fields/f",
            &t,
            json!({"type":"bigserial"}),
        )
        .await,
        400,
        "FIELD_TYPE_INVALID",
    );
    // A GET result can be sent back unchanged.
    let f = app.get("/api/describe/m1/fields/f", t.token()).await.body["data"].clone();
    let r = put(&app, "/api/describe/m1/fields/f", &t, f.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Removing the target model is refused while m1.f points at it; cascade children are listed.
    let d = err(
        &del(&app, "/api/describe/m3", &t).await,
        409,
        "MODEL_IN_USE",
    );
    assert_eq!(d["fields"], json!(["m1.f"]));

    // System models: readable, never writable.
    let r = app.get("/api/describe/users", t.token()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"]["status"], "system");
    assert_eq!(r.body["data"]["fields"][1]["field_name"], "username");
    err(
        &put(&app, "/api/describe/users", &t, json!({"frozen":true})).await,
        403,
        "MODEL_SYSTEM_PROTECTED",
    );
    err(
        &del(&app, "/api/describe/models", &t).await,
        403,
        "MODEL_SYSTEM_PROTECTED",
    );
    err(
        &post("/api/describe/users/fields/x", json!({"type":"text"})).await,
        403,
        "FIELD_SYSTEM_PROTECTED",
    );
    err(
        &post(
            "/api/describe/users/fields",
            json!([{"field_name":"x","type":"text"}]),
        )
        .await,
        403,
        "FIELD_SYSTEM_PROTECTED",
    );
    err(
        &put(
            &app,
            "/api/describe/tracked/fields/operation",
            &t,
            json!({"index":true}),
        )
        .await,
        403,
        "FIELD_SYSTEM_PROTECTED",
    );
    err(
        &put(
            &app,
            "/api/describe/fields/fields",
            &t,
            json!([{"field_name":"type","index":true}]),
        )
        .await,
        403,
        "FIELD_SYSTEM_PROTECTED",
    );
    err(
        &del(&app, "/api/describe/filters/fields/name", &t).await,
        403,
        "FIELD_SYSTEM_PROTECTED",
    );
    // Internal tables are not models.
    for internal in ["credentials", "idempotency_keys", "machine_keys"] {
        err(
            &app.get(&format!("/api/describe/{internal}"), t.token())
                .await,
            404,
            "MODEL_NOT_FOUND",
        );
        err(
            &del(&app, &format!("/api/describe/{internal}"), &t).await,
            404,
            "MODEL_NOT_FOUND",
        );
    }
}

#[tokio::test]
async fn two_pods_see_a_change_on_the_next_request() {
    let a = spawn_app().await;
    let b = spawn_app().await;
    let t = TestTenant::new(&a).await;
    let r = a
        .post(
            "/api/describe/shared",
            t.token(),
            json!({"fields":{"one":{"type":"text"}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let count = |r: &abbotik_testkit::Resp| r.body["data"]["fields"].as_array().map_or(0, Vec::len);
    // Both pods load (and cache) the model.
    assert_eq!(count(&a.get("/api/describe/shared", t.token()).await), 1);
    assert_eq!(count(&b.get("/api/describe/shared", t.token()).await), 1);
    for n in 2..5 {
        let (writer, reader) = if n % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let r = writer
            .post(
                &format!("/api/describe/shared/fields/f{n}"),
                t.token(),
                json!({"type":"integer"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(
            count(&reader.get("/api/describe/shared", t.token()).await),
            n
        );
        assert_eq!(
            count(&writer.get("/api/describe/shared", t.token()).await),
            n
        );
    }
    let r = b
        .call(
            "PUT",
            "/api/describe/shared/fields/f2",
            t.token(),
            Some(json!({"description":"seen"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        a.get("/api/describe/shared/fields/f2", t.token())
            .await
            .body["data"]["description"],
        "seen"
    );
    let r = a
        .call("DELETE", "/api/describe/shared", t.token(), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    err(
        &b.get("/api/describe/shared", t.token()).await,
        404,
        "MODEL_NOT_FOUND",
    );
}

/// The interface the data surface relies on: `model`, `relationship`, `cascade_children`,
/// over the real store, and the `meta_version` bump of every describe write.
#[tokio::test]
async fn service_interface_over_postgres() {
    use abbotik_adapters::postgres::describe_store::PgDescribeStore;
    use abbotik_adapters::postgres::{Db, DbConfig};
    use abbotik_domain::describe::DescribeService;
    use std::sync::Arc;

    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let c = abbotik_testkit::test_db().await;
    let v0 = meta_version(&c, &t).await;
    let r = app
        .post("/api/describe/customers", t.token(), json!({}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .post(
            "/api/describe/orders",
            t.token(),
            json!({"fields":{"customer_id":{"type":"uuid","relationship_type":"owned","related_model":"customers","relationship_name":"orders","cascade_delete":true},
                             "referrer_id":{"type":"uuid","relationship_type":"referenced","related_model":"customers","relationship_name":"referrals"}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let v1 = meta_version(&c, &t).await;
    assert_eq!(v1, v0 + 2, "one bump per describe write");
    // A failed write does not bump.
    err(
        &app.post("/api/describe/orders", t.token(), json!({})).await,
        409,
        "MODEL_EXISTS",
    );
    assert_eq!(meta_version(&c, &t).await, v1);

    let url = std::env::var("ABBOTIK_TEST_DATABASE_URL")
        .unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
    let pool = Db::connect(&DbConfig {
        url: Some(url),
        socket_dir: None,
        port: 5432,
        user: String::new(),
        dbname: String::new(),
        pool_max: 2,
        read_lanes: 1,
        statement_timeout_ms: 30_000,
    })
    .unwrap();
    let svc = DescribeService::new(Arc::new(PgDescribeStore::new(pool)));
    let tenant = abbotik_domain::ident::tenant_name(&t.name).unwrap();
    let ctx = abbotik_domain::TenantCtx {
        tenant_id: t.tenant_id.parse().unwrap(),
        schema: abbotik_domain::ident::tenant_schema(&tenant),
        tenant,
        tenant_status: "active".into(),
        user_id: uuid::Uuid::nil(),
        username: "owner".into(),
        role: abbotik_domain::Role::Root,
        auth: abbotik_domain::AuthInfo {
            auth_type: abbotik_domain::AuthType::Username,
            token_id: None,
            key_id: None,
            key_fingerprint: None,
            api_key_id: None,
            is_sudo_token: false,
            is_fake: false,
            faked_by: None,
            issued_at: None,
            expires_at: None,
        },
        meta_version: v1,
        request_id: "test".into(),
    };
    let m = svc.model(&ctx, "orders").await.unwrap();
    assert_eq!(m.fields.len(), 2);
    let (child, f) = svc.relationship(&ctx, "customers", "orders").await.unwrap();
    assert_eq!(
        (child.model_name.as_str(), f.field_name.as_str()),
        ("orders", "customer_id")
    );
    let (_, f) = svc
        .relationship(&ctx, "customers", "referrals")
        .await
        .unwrap();
    assert_eq!(f.field_name, "referrer_id");
    let e = svc
        .relationship(&ctx, "orders", "orders")
        .await
        .unwrap_err();
    assert_eq!(e.code, abbotik_domain::ErrorCode::ModelRelationshipNotFound);
    let e = svc
        .relationship(&ctx, "customers", "nope")
        .await
        .unwrap_err();
    assert_eq!(e.code, abbotik_domain::ErrorCode::ModelRelationshipNotFound);
    let kids = svc.cascade_children(&ctx, "customers").await.unwrap();
    assert_eq!(kids.len(), 1);
    assert_eq!(kids[0].1.field_name, "customer_id");
    assert_eq!(svc.model(&ctx, "users").await.unwrap().status, "system");
    assert_eq!(
        svc.model(&ctx, "credentials").await.unwrap_err().code,
        abbotik_domain::ErrorCode::ModelNotFound
    );

    // Deleting a model removes its saved filters and tracked entries.
    let s = schema(&t);
    c.batch_execute(&format!(
        "INSERT INTO {s}.\"filters\" (model_name, name) VALUES ('orders', 'mine');
         INSERT INTO {s}.\"tracked\" (model_name, record_id, operation) VALUES ('orders', gen_random_uuid(), 'create');"
    ))
    .await
    .unwrap();
    let r = put(
        &app,
        "/api/describe/orders/fields/customer_id",
        &t,
        json!({"cascade_delete":false}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ctx2 = abbotik_domain::TenantCtx {
        meta_version: meta_version(&c, &t).await,
        ..ctx.clone()
    };
    assert!(svc
        .cascade_children(&ctx2, "customers")
        .await
        .unwrap()
        .is_empty());
    let r = del(&app, "/api/describe/orders", &t).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for table in ["filters", "tracked", "fields"] {
        let n: i64 = c
            .query_one(
                &format!("SELECT count(*) FROM {s}.\"{table}\" WHERE model_name = 'orders'"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "{table}");
    }
}

async fn meta_version(c: &tokio_postgres::Client, t: &TestTenant) -> i64 {
    c.query_one(
        "SELECT meta_version FROM abbotik_control.tenants WHERE id = $1::text::uuid",
        &[&t.tenant_id],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test]
async fn concurrent_writes_are_serialized() {
    let app = spawn_app().await;
    let t = TestTenant::new(&app).await;
    let tries = (0..6).map(|_| {
        app.post(
            "/api/describe/race",
            t.token(),
            json!({"fields":{"a":{"type":"text"}}}),
        )
    });
    let out = futures::future::join_all(tries).await;
    let created = out.iter().filter(|r| r.status == 201).count();
    assert_eq!(
        created,
        1,
        "{:?}",
        out.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    for r in out.iter().filter(|r| r.status != 201) {
        err(r, 409, "MODEL_EXISTS");
    }
    let adds = (0..6).map(|i| {
        let path = format!("/api/describe/race/fields/f{i}");
        let app = &app;
        let t = &t;
        async move {
            app.post(&path, t.token(), json!({"type":"integer","index":true}))
                .await
        }
    });
    for r in futures::future::join_all(adds).await {
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let r = app.get("/api/describe/race/fields", t.token()).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 7);
}
