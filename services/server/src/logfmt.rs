//! The log line of B6: one JSON object per line with `ts`, `level`, `msg`, `target`, then the
//! fields of the request being handled (`request_id`, `method`, `route`, `tenant`, `user_id`;
//! [`request_log`]), of any enclosing spans, and of the event itself (`status`,
//! `duration_ms`, …). Field values
//! never include request bodies or credentials: only what code records explicitly.

use abbotik_http::request_log::{self, RequestLog};
use serde_json::Value;
use std::fmt;
use std::fmt::Write as _;
use tracing::field::{Field, Visit};
use tracing::span;
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats events as B6 JSON lines, written straight into the line buffer (this runs once per
/// request on the hot path). Pair it with [`MemberFields`], which stores span fields as
/// ready-made `,"key":value` members spliced in as they are.
pub struct JsonLines;

/// Stores span fields as `,"key":value` JSON members. Recording a field later (the request
/// span learns its tenant and user after authentication) appends members instead of
/// re-parsing and re-serializing the whole set, which is what the stock JSON formatter does.
pub struct MemberFields;

impl<'w> FormatFields<'w> for MemberFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut out = String::new();
        fields.record(&mut Members(&mut out));
        writer.write_str(&out)
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &span::Record<'_>,
    ) -> fmt::Result {
        fields.record(&mut Members(&mut current.fields));
        Ok(())
    }
}

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

/// Appends `s` as a JSON string (quoted, escaped as JSON requires).
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    escape_into(out, s);
    out.push('"');
}

/// Copies runs that need no escaping whole (most values have none): every byte that needs
/// escaping is ASCII, so the runs always end on character boundaries.
fn escape_into(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escaped);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Escapes what is formatted into it straight into the line (no intermediate string).
struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
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
        self.0.push('"');
        let _ = write!(Escaping(self.0), "{value:?}");
        self.0.push('"');
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
        request_log::with_current(|r| push_request(&mut line, r));
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>() {
                    line.push_str(fields);
                }
            }
        }
        event.record(&mut Members(&mut line));
        line.push('}');
        writeln!(writer, "{line}")
    }
}

/// The `request` event of [`request_log::access`] as [`JsonLines`] formats it, written
/// without a `tracing` event (no span can enclose it: the request's context is a task-local).
pub fn access_line(r: &RequestLog, status: u16, duration_ms: u64) -> String {
    let mut line = String::with_capacity(320);
    line.push_str("{\"ts\":\"");
    line.push_str(&abbotik_domain::time::Ts::now().to_rfc3339());
    line.push_str("\",\"level\":\"info\",\"target\":");
    push_json_str(&mut line, request_log::ACCESS_TARGET);
    push_request(&mut line, r);
    let _ = writeln!(
        line,
        ",\"msg\":\"request\",\"status\":{status},\"duration_ms\":{duration_ms}}}"
    );
    line
}

/// The fields of the request being handled: `request_id`, `method`, `route`, then `tenant`
/// and `user_id` once the caller is known.
fn push_request(line: &mut String, r: &RequestLog) {
    line.push_str(",\"request_id\":");
    push_json_str(line, &r.request_id);
    line.push_str(",\"method\":");
    push_json_str(line, r.method.as_str());
    line.push_str(",\"route\":");
    push_json_str(line, &r.route);
    if let Some((tenant, user_id)) = r.caller() {
        line.push_str(",\"tenant\":");
        push_json_str(line, tenant);
        let _ = write!(line, ",\"user_id\":\"{user_id}\"");
    }
}

/// The human-readable format (`ABBOTIK_LOG_FORMAT=pretty`): the stock line, followed by the
/// request's fields as `key=value` pairs.
pub struct PrettyLines;

impl<S, N> FormatEvent<S, N> for PrettyLines
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
        let mut line = String::new();
        tracing_subscriber::fmt::format::Format::default()
            .with_ansi(writer.has_ansi_escapes())
            .format_event(ctx, Writer::new(&mut line), event)?;
        let mut fields = String::new();
        request_log::with_current(|r| {
            let _ = write!(
                fields,
                " request_id={} method={} route={}",
                r.request_id, r.method, r.route
            );
            if let Some((tenant, user_id)) = r.caller() {
                let _ = write!(fields, " tenant={tenant} user_id={user_id}");
            }
        });
        writeln!(writer, "{}{fields}", line.trim_end_matches('\n'))
    }
}

/// The field formatter span fields are stored with.
pub fn span_fields() -> MemberFields {
    MemberFields
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// A subscriber formatting as the server does, and the buffer it writes to.
    fn json_lines() -> (Buf, impl Subscriber + Send + Sync) {
        let buf = Buf::default();
        let out = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .fmt_fields(span_fields())
            .event_format(JsonLines)
            .finish();
        (buf, sub)
    }

    #[test]
    fn strings_escape_to_json_that_reads_back_the_same() {
        for s in [
            "",
            "plain",
            "q\"uote\\slash",
            "\n\r\t\u{0}\u{1f}\u{8}\u{c}",
            "ünï \"cødé\" ✓\n",
            "\u{7f}\u{80}\u{2028}end",
        ] {
            let mut out = String::new();
            push_json_str(&mut out, s);
            let back: String = serde_json::from_str(&out).expect(&out);
            assert_eq!(back, s, "{out}");
        }
    }

    #[test]
    fn a_line_is_one_json_object_with_span_and_event_fields() {
        let (buf, sub) = json_lines();
        tracing::subscriber::with_default(sub, || {
            let span = tracing::info_span!(
                "request",
                request_id = "r1",
                route = "/api/x \"q\"",
                method = %"GET\n\u{1}",
                tenant = tracing::field::Empty
            );
            span.record("tenant", "acme");
            span.in_scope(|| tracing::info!(status = 200u64, ok = true, "request"));
        });
        let text = buf.text();
        let line: Value = serde_json::from_str(text.trim()).expect(&text);
        assert_eq!(line["msg"], "request");
        assert_eq!(line["level"], "info");
        assert_eq!(line["request_id"], "r1");
        assert_eq!(line["route"], "/api/x \"q\"");
        assert_eq!(line["method"], "GET\n\u{1}");
        assert_eq!(line["tenant"], "acme");
        assert_eq!(line["status"], 200);
        assert_eq!(line["ok"], true);
        assert!(line["ts"].as_str().unwrap().ends_with('Z'));
    }

    /// The direct access line is, but for its time, the line the `request` event gives.
    #[test]
    fn the_access_line_is_the_line_of_the_request_event() {
        let (buf, sub) = json_lines();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let user = uuid::Uuid::new_v4();
        let mut direct = String::new();
        tracing::subscriber::with_default(sub, || {
            let log = RequestLog::new("r\"1".into(), axum::http::Method::GET, "/x/{id}".into());
            rt.block_on(request_log::scope(log, async {
                request_log::record_caller("acme", user);
                tracing::info!(target: request_log::ACCESS_TARGET, status = 404u16, duration_ms = 7u64, "request");
                request_log::with_current(|r| direct = access_line(r, 404, 7));
            }));
        });
        let event = buf.text();
        let untimed = |l: &str| l[l.find("\"level\"").expect(l)..].to_owned();
        assert_eq!(untimed(&direct), untimed(&event));
        let line: Value = serde_json::from_str(direct.trim()).expect(&direct);
        assert!(line["ts"].as_str().unwrap().ends_with('Z'));
    }

    /// The request's log context puts its fields on every line written while it is handled,
    /// the caller's once known; lines outside a request have none.
    #[test]
    fn lines_carry_the_fields_of_the_request_being_handled() {
        let (buf, sub) = json_lines();
        let user = uuid::Uuid::new_v4();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        tracing::subscriber::with_default(sub, || {
            let log = RequestLog::new(
                "r\"1".into(),
                axum::http::Method::GET,
                "/api/data/{model}/{id}".into(),
            );
            rt.block_on(request_log::scope(log, async {
                tracing::warn!("before auth");
                request_log::record_caller("acme", user);
                tracing::info!(status = 200u64, "request");
            }));
            tracing::info!("outside");
        });
        let text = buf.text();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect(l))
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0]["request_id"], "r\"1");
        assert_eq!(lines[0]["route"], "/api/data/{model}/{id}");
        assert_eq!(lines[0]["method"], "GET");
        assert!(lines[0].get("tenant").is_none(), "{text}");
        assert_eq!(lines[1]["msg"], "request");
        assert_eq!(lines[1]["tenant"], "acme");
        assert_eq!(lines[1]["user_id"], user.to_string());
        assert_eq!(lines[1]["status"], 200);
        assert!(lines[2].get("request_id").is_none(), "{text}");
    }
}
