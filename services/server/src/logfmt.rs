//! The log line of B6: one JSON object per line with `ts`, `level`, `msg`, `target`, then the
//! fields of the enclosing spans (the request span carries `request_id`, `method`, `route`,
//! `tenant`, `user_id`) and of the event itself (`status`, `duration_ms`, …). Field values
//! never include request bodies or credentials: only what code records explicitly.

use serde_json::Value;
use std::fmt;
use std::fmt::Write as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats events as B6 JSON lines, written straight into the line buffer (this runs once per
/// request on the hot path). Pair it with [`JsonFields`], which stores span fields as JSON
/// objects whose members are spliced in as they are.
pub struct JsonLines;

/// Appends `,"key":value` members to a JSON object under construction.
struct Members<'a>(&'a mut String);

impl Members<'_> {
    fn key(&mut self, field: &Field) {
        let name = match field.name() {
            "message" => "msg",
            other => other,
        };
        self.0.push(',');
        push_json_str(self.0, name);
        self.0.push(':');
    }
}

fn push_json_str(out: &mut String, s: &str) {
    // serde_json escapes exactly as JSON requires; writing into a String cannot fail.
    if let Ok(quoted) = serde_json::to_string(s) {
        out.push_str(&quoted);
    }
}

impl Visit for Members<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        push_json_str(self.0, value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.0, "{value}");
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.0, "{value}");
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        let _ = write!(self.0, "{value}");
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        match Value::from(value) {
            Value::Number(n) => {
                let _ = write!(self.0, "{n}");
            }
            _ => self.0.push_str("null"),
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        push_json_str(self.0, &format!("{value:?}"));
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = String::with_capacity(256);
        line.push_str("{\"ts\":\"");
        line.push_str(&abbotik_domain::time::Ts::now().to_rfc3339());
        line.push_str("\",\"level\":\"");
        line.push_str(&meta.level().as_str().to_ascii_lowercase());
        line.push_str("\",\"target\":");
        push_json_str(&mut line, meta.target());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                let Some(fields) = ext.get::<FormattedFields<N>>() else {
                    continue;
                };
                // `{"a":1,"b":2}` → `,"a":1,"b":2`
                let inner = fields.trim().trim_start_matches('{').trim_end_matches('}');
                if !inner.trim().is_empty() {
                    line.push(',');
                    line.push_str(inner);
                }
            }
        }
        event.record(&mut Members(&mut line));
        line.push('}');
        writeln!(writer, "{line}")
    }
}

/// The field formatter span fields are stored with.
pub fn span_fields() -> JsonFields {
    JsonFields::new()
}
