//! The input of an import (A8.3): NDJSON lines pulled one at a time from a [`LineSource`]
//! (the HTTP body stream, with its own byte limits), or the JSON export document, which is
//! turned into the same lines (meta = line 1, then the model lines, then the records), so
//! both forms run through one code path and report the same line numbers.

use crate::Result;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::VecDeque;

/// Lines of an NDJSON body, without their line terminator; a line is valid until the next
/// call (the source lends it from its buffer). `None` at the end of the body.
/// Byte limits (line and stream) are the source's business; it reports them as errors.
#[async_trait::async_trait]
pub trait LineSource: Send {
    async fn next_line(&mut self) -> Result<Option<&[u8]>>;
}

/// What the import reads.
pub enum ImportInput {
    /// `application/x-ndjson`, read as a stream.
    Stream(Box<dyn LineSource>),
    /// `application/json`: the whole export document, with or without the success envelope.
    Document(Value),
}

/// One input line: its 1-based number and its content (or why it is not JSON).
pub(super) struct Line {
    pub no: u64,
    pub value: std::result::Result<Parsed, String>,
}

/// A parsed line: record lines (nearly all of an import) skip the generic object.
pub(super) enum Parsed {
    Record {
        model: Option<Value>,
        data: RecordData,
    },
    Other(Value),
}

/// The `data` of a record line: its text when read from NDJSON (spread over the columns
/// without building an object, see [`super::rows::Given`]), or a value of the JSON document.
pub(super) enum RecordData {
    Raw(Box<RawValue>),
    Value(Value),
    Absent,
}

/// The keys of a record line (other keys are ignored, as on every line).
#[derive(serde::Deserialize)]
struct RecordLine {
    #[serde(default)]
    model: Option<Value>,
    #[serde(default)]
    data: Option<Box<RawValue>>,
}

impl Parsed {
    fn from_value(v: Value) -> Parsed {
        match v {
            Value::Object(mut o) if o.get("type").and_then(Value::as_str) == Some("record") => {
                Parsed::Record {
                    model: o.remove("model"),
                    data: o
                        .remove("data")
                        .map_or(RecordData::Absent, RecordData::Value),
                }
            }
            other => Parsed::Other(other),
        }
    }
}

/// Record lines as written by export start with this; they are read into [`RecordLine`].
const RECORD_PREFIX: &[u8] = br#"{"type":"record","#;

fn parse(text: &[u8]) -> std::result::Result<Parsed, String> {
    if text.starts_with(RECORD_PREFIX) {
        if let Ok(r) = serde_json::from_slice::<RecordLine>(text) {
            return Ok(Parsed::Record {
                model: r.model,
                data: r.data.map_or(RecordData::Absent, RecordData::Raw),
            });
        }
    }
    serde_json::from_slice::<Value>(text)
        .map(Parsed::from_value)
        .map_err(|e| format!("not valid JSON (column {}): {}", e.column(), short(&e)))
}

/// Yields lines from either input form; blank lines are counted and skipped.
pub(super) enum Reader {
    Stream { src: Box<dyn LineSource>, no: u64 },
    Doc { lines: VecDeque<Value>, no: u64 },
}

impl Reader {
    pub fn new(input: ImportInput) -> Reader {
        match input {
            ImportInput::Stream(src) => Reader::Stream { src, no: 0 },
            ImportInput::Document(v) => Reader::Doc {
                lines: document_lines(v),
                no: 0,
            },
        }
    }

    pub async fn next(&mut self) -> Result<Option<Line>> {
        match self {
            Reader::Stream { src, no } => loop {
                let Some(bytes) = src.next_line().await? else {
                    return Ok(None);
                };
                *no += 1;
                let text = match bytes.last() {
                    Some(b'\r') => &bytes[..bytes.len() - 1],
                    _ => bytes,
                };
                if text.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(Line {
                    no: *no,
                    value: parse(text),
                }));
            },
            Reader::Doc { lines, no } => Ok(lines.pop_front().map(|v| {
                *no += 1;
                Line {
                    no: *no,
                    value: Ok(Parsed::from_value(v)),
                }
            })),
        }
    }
}

fn short(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.find(" at line") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// The export document as lines. A document that is not an object of the expected shape
/// still yields lines (its `meta` is then what line 1 reports as invalid).
fn document_lines(v: Value) -> VecDeque<Value> {
    let mut doc = match v {
        Value::Object(mut o) if o.contains_key("success") && o.contains_key("data") => {
            o.remove("data").unwrap_or(Value::Null)
        }
        other => other,
    };
    let mut out = VecDeque::new();
    let Some(obj) = doc.as_object_mut() else {
        out.push_back(doc);
        return out;
    };
    let mut meta = match obj.remove("meta") {
        Some(Value::Object(m)) => m,
        Some(other) => {
            out.push_back(other);
            return out;
        }
        None => Map::new(),
    };
    meta.insert("type".into(), Value::String("meta".into()));
    out.push_back(Value::Object(meta));
    if let Some(models) = obj.remove("models") {
        match models {
            Value::Array(list) => {
                for m in list {
                    out.push_back(tagged("model", &[("model", m)]));
                }
            }
            other => out.push_back(tagged("model", &[("model", other)])),
        }
    }
    if let Some(records) = obj.remove("records") {
        match records {
            Value::Object(by_model) => {
                for (model, list) in by_model {
                    let items = match list {
                        Value::Array(a) => a,
                        other => vec![other],
                    };
                    for r in items {
                        out.push_back(tagged(
                            "record",
                            &[("model", Value::String(model.clone())), ("data", r)],
                        ));
                    }
                }
            }
            other => out.push_back(tagged("record", &[("data", other)])),
        }
    }
    out
}

fn tagged(kind: &str, parts: &[(&str, Value)]) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), Value::String(kind.into()));
    for (k, v) in parts {
        m.insert((*k).to_owned(), v.clone());
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn record_lines_fast_and_generic() {
        let fast = br#"{"type":"record","model":"a","data":{"x":1},"extra":true}"#;
        let Ok(Parsed::Record {
            model,
            data: RecordData::Raw(data),
        }) = parse(fast)
        else {
            panic!("record")
        };
        assert_eq!((model.unwrap(), data.get()), (json!("a"), r#"{"x":1}"#));
        let slow = br#"{"data":{"x":1},"type":"record","model":"a"}"#;
        assert!(matches!(parse(slow), Ok(Parsed::Record { .. })));
        assert!(matches!(parse(br#"{"type":"end"}"#), Ok(Parsed::Other(_))));
        assert!(parse(br#"{"type":"record","#).is_err());
    }

    #[tokio::test]
    async fn document_becomes_lines() {
        let doc = json!({"success": true, "data": {
            "meta": {"format": "abbotik-export", "version": 1},
            "models": [{"model_name": "a"}],
            "records": {"a": [{"id": "x"}, {"id": "y"}]}}});
        let mut r = Reader::new(ImportInput::Document(doc));
        let mut kinds = Vec::new();
        while let Some(l) = r.next().await.unwrap() {
            let kind = match l.value.unwrap() {
                Parsed::Record { .. } => "record".to_owned(),
                Parsed::Other(v) => v["type"].as_str().unwrap().to_owned(),
            };
            kinds.push((l.no, kind));
        }
        assert_eq!(
            kinds,
            vec![
                (1, "meta".to_owned()),
                (2, "model".to_owned()),
                (3, "record".to_owned()),
                (4, "record".to_owned())
            ]
        );
    }
}
