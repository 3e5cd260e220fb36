//! The SQL of a `where` filter (A6.3–A6.5): the one place [`Filter`] becomes SQL.
//!
//! Identifiers are only the validated column names of the AST, quoted; every value, pattern
//! and jsonb path is a bound parameter. Empty-array operands were already resolved by the
//! parser to `TRUE`/`FALSE`. Text ordering uses `COLLATE "C"` (byte order of UTF-8).
//! A `$regex` pattern is also compiled by a constant test (`'' ~ $n`) that PostgreSQL folds
//! at plan time, so an invalid pattern fails with SQLSTATE 2201B even on an empty table.

use super::records_sql::{bound, col, Sql};
use abbotik_domain::data::filter::{ArrayOp, CmpOp, Filter, JsonTest, TextOp};
use abbotik_domain::data::values;
use abbotik_domain::model::FieldType;
use abbotik_domain::ports::records::Column;
use serde_json::Value;

/// Compiles a filter on rows aliased `alias`.
pub fn filter(sql: &mut Sql, alias: &str, f: &Filter) -> String {
    match f {
        Filter::True => "TRUE".into(),
        Filter::False => "FALSE".into(),
        Filter::And(parts) if parts.is_empty() => "TRUE".into(),
        Filter::Or(parts) if parts.is_empty() => "FALSE".into(),
        Filter::And(parts) => join(sql, alias, parts, " AND "),
        Filter::Or(parts) => join(sql, alias, parts, " OR "),
        Filter::Not(inner) => format!("(NOT {})", filter(sql, alias, inner)),
        Filter::Eq { column, value } => {
            let v = bound(sql, column.ty, value);
            format!("{} = {v}", col(alias, &column.name))
        }
        Filter::In {
            column,
            values: vals,
            or_null,
        } => {
            let c = col(alias, &column.name);
            let any = any_of(sql, &c, column, vals);
            if *or_null {
                format!("({any} OR {c} IS NULL)")
            } else {
                any
            }
        }
        Filter::NotIn {
            column,
            values: vals,
            or_null,
        } => {
            let c = col(alias, &column.name);
            match (vals.is_empty(), *or_null) {
                (true, true) => format!("{c} IS NOT NULL"),
                (true, false) => "TRUE".into(),
                (false, null) => {
                    let any = any_of(sql, &c, column, vals);
                    if null {
                        format!("(NOT ({any}) AND {c} IS NOT NULL)")
                    } else {
                        format!("(NOT ({any}))")
                    }
                }
            }
        }
        Filter::IsNull { column } => format!("{} IS NULL", col(alias, &column.name)),
        Filter::NotNull { column } => format!("{} IS NOT NULL", col(alias, &column.name)),
        Filter::Cmp { column, op, value } => {
            let v = bound(sql, column.ty, value);
            format!("{} {} {v}", ordered(alias, column, *op), op.sql())
        }
        Filter::Between { column, low, high } => {
            let lo = bound(sql, column.ty, low);
            let hi = bound(sql, column.ty, high);
            format!(
                "{} BETWEEN {lo} AND {hi}",
                ordered(alias, column, CmpOp::Gt)
            )
        }
        Filter::Text {
            column,
            op,
            pattern,
        } => {
            let c = col(alias, &column.name);
            let e = if column.ty == FieldType::Text {
                c
            } else {
                format!("{c}::text")
            };
            text(sql, &e, *op, pattern)
        }
        Filter::Array { column, op, values } => {
            let c = col(alias, &column.name);
            let v = bound(sql, column.ty, &Value::Array(values.clone()));
            match op {
                ArrayOp::Any => format!("{c} && {v}"),
                ArrayOp::All => format!("{c} @> {v}"),
                ArrayOp::NAny => format!("(NOT ({c} && {v}))"),
                ArrayOp::NAll => format!("(NOT ({c} @> {v}))"),
            }
        }
        Filter::Size { column, op, value } => {
            let n = sql.int(*value);
            format!("cardinality({}) {} {n}", col(alias, &column.name), op.sql())
        }
        Filter::Contains { column, value } => {
            let p = sql.text(value.to_string());
            format!("{} @> {p}::jsonb", col(alias, &column.name))
        }
        Filter::Json { column, path, test } => {
            let p = sql.texts(path.clone());
            let x = format!("({} #> {p})", col(alias, &column.name));
            let xt = format!("({} #>> {p})", col(alias, &column.name));
            json(sql, &x, &xt, test)
        }
    }
}

fn join(sql: &mut Sql, alias: &str, parts: &[Filter], sep: &str) -> String {
    let p: Vec<String> = parts.iter().map(|x| filter(sql, alias, x)).collect();
    format!("({})", p.join(sep))
}

/// The column as an ordered expression: text in byte order.
fn ordered(alias: &str, column: &Column, op: CmpOp) -> String {
    let c = col(alias, &column.name);
    if column.ty == FieldType::Text && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
        format!("{c} COLLATE \"C\"")
    } else {
        c
    }
}

/// `c = ANY(values)` for a non-empty list (`FALSE` for an empty one).
fn any_of(sql: &mut Sql, c: &str, column: &Column, vals: &[Value]) -> String {
    if vals.is_empty() {
        return "FALSE".into();
    }
    let ty = column.ty;
    if ty == FieldType::Jsonb || ty == FieldType::Binary || ty.is_array() {
        let parts: Vec<String> = vals
            .iter()
            .map(|v| format!("{c} = {}", bound(sql, ty, v)))
            .collect();
        return format!("({})", parts.join(" OR "));
    }
    let texts: Vec<String> = vals.iter().map(values::sql_text).collect();
    let p = sql.texts(texts);
    if ty == FieldType::Text {
        format!("{c} = ANY({p})")
    } else {
        format!("{c} = ANY({p}::{}[])", ty.pg_type())
    }
}

/// `%`, `_` and `\` escaped for a literal `LIKE` match.
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// A pattern / text-search operator on the text expression `e`.
fn text(sql: &mut Sql, e: &str, op: TextOp, pattern: &str) -> String {
    match op {
        TextOp::Find => {
            let p = sql.text(format!("%{}%", like_escape(pattern)));
            format!("{e} ILIKE {p}")
        }
        TextOp::Search => {
            let p = sql.text(pattern.to_owned());
            format!("to_tsvector('english', {e}) @@ plainto_tsquery('english', {p})")
        }
        TextOp::Regex | TextOp::NotRegex => {
            let p = sql.text(pattern.to_owned());
            let o = if op == TextOp::Regex { "~" } else { "!~" };
            format!("(('' ~ {p}) IS NOT NULL AND {e} {o} {p})")
        }
        TextOp::Like | TextOp::NotLike | TextOp::ILike | TextOp::NotILike => {
            let p = sql.text(pattern.to_owned());
            let o = match op {
                TextOp::Like => "LIKE",
                TextOp::NotLike => "NOT LIKE",
                TextOp::ILike => "ILIKE",
                _ => "NOT ILIKE",
            };
            format!("{e} {o} {p}")
        }
    }
}

/// A JSON value bound as `jsonb`.
fn jb(sql: &mut Sql, v: &Value) -> String {
    format!("{}::jsonb", sql.text(v.to_string()))
}

/// A JSON list bound as `jsonb[]`.
fn jbs(sql: &mut Sql, vals: &[Value]) -> String {
    let texts: Vec<String> = vals.iter().map(Value::to_string).collect();
    format!("{}::jsonb[]", sql.texts(texts))
}

/// A test at a jsonb path: `x` = `f #> p`, `xt` = `f #>> p`.
fn json(sql: &mut Sql, x: &str, xt: &str, test: &JsonTest) -> String {
    // The value with JSON null read as SQL NULL (A6.5: missing key or JSON null = null).
    let xv = format!("nullif({x}, 'null'::jsonb)");
    let arr = |body: String| format!("(CASE WHEN jsonb_typeof({x}) = 'array' THEN {body} END)");
    match test {
        JsonTest::Eq(v) => format!("{xv} = {}", jb(sql, v)),
        JsonTest::Ne(v) => format!("{xv} <> {}", jb(sql, v)),
        JsonTest::In { values, or_null } => {
            let any = if values.is_empty() {
                "FALSE".to_owned()
            } else {
                format!("{xv} = ANY({})", jbs(sql, values))
            };
            if *or_null {
                format!("({any} OR {xv} IS NULL)")
            } else {
                any
            }
        }
        JsonTest::NotIn { values, or_null } => {
            let any = if values.is_empty() {
                "FALSE".to_owned()
            } else {
                format!("{xv} = ANY({})", jbs(sql, values))
            };
            if *or_null {
                format!("(NOT ({any}) AND {xv} IS NOT NULL)")
            } else {
                format!("(NOT ({any}))")
            }
        }
        JsonTest::Null => format!("{xv} IS NULL"),
        JsonTest::NotNull => format!("{xv} IS NOT NULL"),
        JsonTest::Exists(true) => format!("{x} IS NOT NULL"),
        JsonTest::Exists(false) => format!("{x} IS NULL"),
        JsonTest::Cmp { op, value } => {
            let (e, v) = json_ordered(sql, x, xt, value);
            format!("{e} {} {v}", op.sql())
        }
        JsonTest::Between { low, high } => {
            let (e, lo) = json_ordered(sql, x, xt, low);
            let (_, hi) = json_ordered(sql, x, xt, high);
            format!("{e} BETWEEN {lo} AND {hi}")
        }
        JsonTest::Text { op, pattern } => text(sql, xt, *op, pattern),
        JsonTest::Array { op, values } => {
            let v = jbs(sql, values);
            let any = arr(format!(
                "EXISTS (SELECT 1 FROM jsonb_array_elements({x}) a(e) WHERE a.e = ANY({v}))"
            ));
            let every = arr(format!(
                "(SELECT bool_and(b.e = ANY(ARRAY(SELECT jsonb_array_elements({x})))) FROM unnest({v}) b(e))"
            ));
            match op {
                ArrayOp::Any => any,
                ArrayOp::All => every,
                ArrayOp::NAny => format!("(NOT {any})"),
                ArrayOp::NAll => format!("(NOT {every})"),
            }
        }
        JsonTest::Size { op, value } => {
            let n = sql.int(*value);
            format!(
                "{} {} {n}",
                arr(format!("jsonb_array_length({x})")),
                op.sql()
            )
        }
        JsonTest::Contains(v) => format!("{x} @> {}", jb(sql, v)),
    }
}

/// Expression and bound operand of an ordering at a jsonb path: numbers against JSON numbers
/// only, strings in byte order.
fn json_ordered(sql: &mut Sql, x: &str, xt: &str, v: &Value) -> (String, String) {
    if v.is_number() {
        let p = sql.text(v.to_string());
        (
            format!("(CASE WHEN jsonb_typeof({x}) = 'number' THEN {xt}::numeric END)"),
            format!("{p}::numeric"),
        )
    } else {
        let p = sql.text(values::sql_text(v));
        (format!("{xt} COLLATE \"C\""), p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abbotik_domain::ident::Ident;
    use serde_json::json;

    fn c(name: &str, ty: FieldType) -> Column {
        Column {
            name: Ident::trusted(name),
            ty,
        }
    }

    fn compile(f: &Filter) -> (String, usize) {
        let mut sql = Sql::default();
        let s = filter(&mut sql, "t", f);
        (s, sql.params.len())
    }

    #[test]
    fn values_are_bound_and_text_orders_bytewise() {
        let (s, n) = compile(&Filter::Or(vec![
            Filter::Cmp {
                column: c("name", FieldType::Text),
                op: CmpOp::Gt,
                value: json!("x'; DROP TABLE t; --"),
            },
            Filter::NotIn {
                column: c("n", FieldType::Integer),
                values: vec![json!(1)],
                or_null: true,
            },
            Filter::Text {
                column: c("n", FieldType::Integer),
                op: TextOp::Find,
                pattern: "5%".into(),
            },
        ]));
        assert_eq!(
            s,
            "(t.\"name\" COLLATE \"C\" > $1::text OR (NOT (t.\"n\" = ANY($2::text[]::integer[])) AND t.\"n\" IS NOT NULL) OR t.\"n\"::text ILIKE $3::text)"
        );
        assert_eq!(n, 3);
        assert!(!s.contains("DROP"));
        assert_eq!(like_escape("5%_\\"), "5\\%\\_\\\\");
    }

    #[test]
    fn constants_and_regex_guard() {
        assert_eq!(compile(&Filter::False).0, "FALSE");
        assert_eq!(compile(&Filter::Or(vec![])).0, "FALSE");
        assert_eq!(compile(&Filter::And(vec![])).0, "TRUE");
        let (s, n) = compile(&Filter::Text {
            column: c("name", FieldType::Text),
            op: TextOp::Regex,
            pattern: "(".into(),
        });
        assert_eq!(s, "(('' ~ $1::text) IS NOT NULL AND t.\"name\" ~ $1::text)");
        assert_eq!(n, 1);
    }

    #[test]
    fn json_paths_are_bound() {
        let (s, n) = compile(&Filter::Json {
            column: c("meta", FieldType::Jsonb),
            path: vec!["a'b".into()],
            test: JsonTest::Cmp {
                op: CmpOp::Gt,
                value: json!(3),
            },
        });
        assert_eq!(
            s,
            "(CASE WHEN jsonb_typeof((t.\"meta\" #> $1::text[])) = 'number' THEN (t.\"meta\" #>> $1::text[])::numeric END) > $2::text::numeric"
        );
        assert_eq!(n, 2);
    }
}
