//! One record per line of JSON, for `eddy test` input and output.
//!
//! ```text
//! {"topic":"sentences","key":"k1","value":"some text","timestamp":1000,"headers":[["h","v"]]}
//! ```
//!
//! - `key` and `value`: a JSON string is its UTF-8 text; an object, array,
//!   number or boolean is its compact JSON text; `null` (or leaving it out)
//!   is no key / a tombstone. Binary bytes go in `key_base64`/`value_base64`.
//! - `timestamp`: milliseconds since the Unix epoch (default 0).
//! - `headers`: a list of `[name, value]` pairs, value a string or null;
//!   `[name, {"base64": "..."}]` for binary.
//!
//! `eddy test` also reads time lines, `{"advance_time": 1700000120000}`:
//! stream time of every window step moves to at least that time, closing
//! windows, as a later record would (see docs/spec.md).
//!
//! Output uses the same format: bytes that parse as a JSON object or array,
//! or that are a number or boolean exactly as JSON writes it, are printed as
//! JSON; other UTF-8 as a string; anything else in base64.

use crate::time::extract::MAX_EVENT_TIME;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// A record with owned bytes, as read from or written to a file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OwnedRecord {
    /// Topic it was read from or goes to.
    pub topic: String,
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The value; none is a tombstone.
    pub value: Option<Vec<u8>>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Headers in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// A line of a records file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {message}", file.display())]
pub struct JsonlError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// One line of an `eddy test` input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputLine {
    /// A record.
    Record(OwnedRecord),
    /// Stream time moves to at least this time.
    AdvanceTime(i64),
}

/// Reads every record of a JSON-lines file; blank lines and lines starting
/// with `#` are skipped. Time lines are errors here (only `eddy test` reads them).
pub fn read_records(path: &Path) -> Result<Vec<OwnedRecord>, JsonlError> {
    read_input(path)?
        .into_iter()
        .map(|(line, l)| match l {
            InputLine::Record(r) => Ok(r),
            InputLine::AdvanceTime(_) => Err(JsonlError {
                file: path.to_path_buf(),
                line,
                message: "`advance_time` lines are for `eddy test` only".into(),
            }),
        })
        .collect()
}

/// Reads every record of a JSON-lines file with its line number (time
/// lines are errors, as for [`read_records`]).
pub fn read_records_numbered(path: &Path) -> Result<Vec<(usize, OwnedRecord)>, JsonlError> {
    read_input(path)?
        .into_iter()
        .map(|(line, l)| match l {
            InputLine::Record(r) => Ok((line, r)),
            InputLine::AdvanceTime(_) => Err(JsonlError {
                file: path.to_path_buf(),
                line,
                message: "`advance_time` lines belong in the input, not the expected output".into(),
            }),
        })
        .collect()
}

/// Reads a JSON-lines file of records and time lines, with line numbers.
pub fn read_input(path: &Path) -> Result<Vec<(usize, InputLine)>, JsonlError> {
    let err = |line: usize, message: String| JsonlError {
        file: path.to_path_buf(),
        line,
        message,
    };
    let f = std::fs::File::open(path).map_err(|e| err(0, format!("cannot open: {e}")))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| err(i + 1, format!("cannot read: {e}")))?;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        out.push((i + 1, parse_input_line(t).map_err(|m| err(i + 1, m))?));
    }
    Ok(out)
}

/// One line of an `eddy test` input file (trimmed; neither blank nor a comment).
pub fn parse_input_line(line: &str) -> Result<InputLine, String> {
    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(line)
        && let Some(t) = m.get("advance_time")
    {
        if m.len() != 1 {
            return Err("a time line has `advance_time` only".into());
        }
        return t
            .as_i64()
            .filter(|t| (0..=MAX_EVENT_TIME).contains(t))
            .map(InputLine::AdvanceTime)
            .ok_or_else(|| {
                format!("`advance_time` must be whole milliseconds from 0 to {MAX_EVENT_TIME}")
            });
    }
    parse_line(line).map(InputLine::Record)
}

const FIELDS: &[&str] = &[
    "topic",
    "key",
    "key_base64",
    "value",
    "value_base64",
    "timestamp",
    "headers",
];

/// One record line.
pub fn parse_line(line: &str) -> Result<OwnedRecord, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(m) = v else {
        return Err("each line must be a JSON object".into());
    };
    // The same line with its fields as written, for JSON keys and values.
    let raw: std::collections::HashMap<String, Box<RawValue>> =
        serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    if let Some(k) = m.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "unknown field `{k}`; expected {}",
            FIELDS.join(", ")
        ));
    }
    let topic = match m.get("topic") {
        Some(Value::String(t)) if !t.is_empty() => t.clone(),
        _ => return Err("`topic` (a non-empty string) is required".into()),
    };
    let timestamp = match m.get("timestamp") {
        None | Some(Value::Null) => 0,
        Some(t) => t.as_i64().ok_or("`timestamp` must be whole milliseconds")?,
    };
    let headers = match m.get("headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(hs)) => hs.iter().map(parse_header).collect::<Result<_, _>>()?,
        Some(_) => return Err("`headers` must be a list of [name, value] pairs".into()),
    };
    Ok(OwnedRecord {
        topic,
        key: bytes(&m, &raw, "key")?,
        value: bytes(&m, &raw, "value")?,
        timestamp,
        headers,
    })
}

/// JSON text without the whitespace outside strings, everything else as
/// written (object keys keep their order).
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

fn bytes(
    m: &Map<String, Value>,
    raw: &std::collections::HashMap<String, Box<RawValue>>,
    field: &str,
) -> Result<Option<Vec<u8>>, String> {
    let b64 = format!("{field}_base64");
    match (m.get(field), m.get(&b64)) {
        (Some(v), Some(_)) if !v.is_null() => Err(format!("give `{field}` or `{b64}`, not both")),
        (_, Some(Value::String(s))) => B64.decode(s).map(Some).map_err(|e| format!("`{b64}`: {e}")),
        (_, Some(_)) => Err(format!("`{b64}` must be a base64 string")),
        (None | Some(Value::Null), None) => Ok(None),
        (Some(Value::String(s)), None) => Ok(Some(s.as_bytes().to_vec())),
        (Some(Value::Object(_) | Value::Array(_)), None) => {
            Ok(raw.get(field).map(|r| compact(r.get()).into_bytes()))
        }
        (Some(v), None) => Ok(Some(serde_json::to_vec(v).expect("a Value serializes"))),
    }
}

fn parse_header(h: &Value) -> Result<(String, Option<Vec<u8>>), String> {
    let bad = || {
        "each header is a [name, value] pair; value a string, null or {\"base64\": \"...\"}"
            .to_string()
    };
    let Value::Array(pair) = h else {
        return Err(bad());
    };
    let [Value::String(name), value] = pair.as_slice() else {
        return Err(bad());
    };
    let value = match value {
        Value::Null => None,
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Object(o) => match o.get("base64") {
            Some(Value::String(s)) if o.len() == 1 => {
                Some(B64.decode(s).map_err(|e| format!("header {name}: {e}"))?)
            }
            _ => return Err(bad()),
        },
        _ => return Err(bad()),
    };
    Ok((name.clone(), value))
}

/// How bytes are shown: as JSON if they are an object or array that a
/// line can hold (as written, made compact), or a number or boolean exactly
/// as JSON writes it (so reading the line back gives the same bytes); else
/// text; else base64.
fn show(b: &[u8]) -> (bool, Box<RawValue>) {
    let raw = |v: &Value| serde_json::value::to_raw_value(v).expect("a Value serializes");
    if matches!(b.first(), Some(b'{' | b'['))
        && let Ok(text) = std::str::from_utf8(b)
        && serde_json::from_str::<&RawValue>(text).is_ok()
        // And it reads back inside a line: numbers in range, nesting
        // within serde_json's limit one level down.
        && serde_json::from_str::<Value>(&format!("[{text}]")).is_ok()
    {
        return (
            false,
            RawValue::from_string(compact(text)).expect("valid JSON stays valid"),
        );
    }
    if let Ok(v @ (Value::Number(_) | Value::Bool(_))) = serde_json::from_slice::<Value>(b)
        && v.to_string().as_bytes() == b
    {
        return (false, raw(&v));
    }
    match std::str::from_utf8(b) {
        Ok(s) => (false, raw(&Value::String(s.to_string()))),
        Err(_) => (true, raw(&Value::String(B64.encode(b)))),
    }
}

/// `bytes` as a JSON field the way output lines show it: `name` with JSON
/// or text, or `<name>_base64`.
pub fn bytes_field(name: &str, bytes: &[u8]) -> (String, Value) {
    let (base64, raw) = show(bytes);
    let value = serde_json::from_str(raw.get()).expect("valid JSON");
    if base64 {
        (format!("{name}_base64"), value)
    } else {
        (name.to_string(), value)
    }
}

/// The output line, fields in a fixed order.
#[derive(serde::Serialize)]
struct Line<'a> {
    topic: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_base64: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_base64: Option<Box<RawValue>>,
    timestamp: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    headers: Vec<Value>,
}

/// Writes one record as a JSON line.
pub fn write_record(
    out: &mut impl Write,
    topic: &str,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    timestamp: i64,
    headers: impl Iterator<Item = (String, Option<Vec<u8>>)>,
) -> std::io::Result<()> {
    // (plain, base64): a missing key or value is written as `null`.
    let field = |b: Option<&[u8]>| match b {
        None => (
            Some(serde_json::value::to_raw_value(&Value::Null).expect("null serializes")),
            None,
        ),
        Some(b) => match show(b) {
            (false, v) => (Some(v), None),
            (true, v) => (None, Some(v)),
        },
    };
    let (key, key_base64) = field(key);
    let (value, value_base64) = field(value);
    let headers = headers
        .map(|(n, v)| {
            let v = match v {
                None => Value::Null,
                Some(b) => match std::str::from_utf8(&b) {
                    Ok(s) => Value::String(s.into()),
                    Err(_) => serde_json::json!({ "base64": B64.encode(&b) }),
                },
            };
            Value::Array(vec![Value::String(n), v])
        })
        .collect();
    let line = Line {
        topic,
        key,
        key_base64,
        value,
        value_base64,
        timestamp,
        headers,
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_json_binary_and_tombstones() {
        let r = parse_line(r#"{"topic":"t","key":"k","value":{"a": 1},"timestamp":5,"headers":[["h","v"],["n",null],["b",{"base64":"AAE="}]]}"#).unwrap();
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r.value.as_deref(), Some(&br#"{"a":1}"#[..]));
        assert_eq!(r.headers[1], ("n".into(), None));
        assert_eq!(r.headers[2].1.as_deref(), Some(&[0u8, 1][..]));
        let t = parse_line(r#"{"topic":"t","value":null}"#).unwrap();
        assert_eq!((t.key, t.value, t.timestamp), (None, None, 0));
        let b = parse_line(r#"{"topic":"t","value_base64":"/w=="}"#).unwrap();
        assert_eq!(b.value.as_deref(), Some(&[0xffu8][..]));
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        assert!(
            parse_line(r#"{"value":"x"}"#)
                .unwrap_err()
                .contains("topic")
        );
        assert!(
            parse_line(r#"{"topic":"t","vaule":"x"}"#)
                .unwrap_err()
                .contains("unknown field `vaule`")
        );
        assert!(
            parse_line(r#"{"topic":"t","value":"x","value_base64":"eA=="}"#)
                .unwrap_err()
                .contains("not both")
        );
        assert!(parse_line("[1]").is_err());
    }

    #[test]
    fn output_round_trips_through_input() {
        let mut buf = Vec::new();
        write_record(
            &mut buf,
            "o",
            Some(b"k"),
            Some(&[0xff, 0]),
            9,
            vec![("h".to_string(), Some(b"v".to_vec()))].into_iter(),
        )
        .unwrap();
        write_record(
            &mut buf,
            "o",
            None,
            Some(br#"{"a":1}"#),
            1,
            std::iter::empty(),
        )
        .unwrap();
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(
            lines[1],
            r#"{"topic":"o","key":null,"value":{"a":1},"timestamp":1}"#
        );
        let back = parse_line(lines[0]).unwrap();
        assert_eq!(back.value.as_deref(), Some(&[0xffu8, 0][..]));
        assert_eq!(back.headers, vec![("h".into(), Some(b"v".to_vec()))]);
    }

    /// Found by fuzzing (fuzz target `records_file`): JSON that reads
    /// alone but not inside a line (a number no `f64` holds, nesting at
    /// serde_json's limit) was written as JSON, and the line read back as
    /// "not JSON"; it is written as text.
    #[test]
    fn json_a_line_cannot_hold_is_written_as_text() {
        let deep = format!("{}{}", "[".repeat(127), "]".repeat(127));
        for bytes in [&br#"{"n":-3.3e+411200}"#[..], deep.as_bytes()] {
            let mut buf = Vec::new();
            write_record(&mut buf, "o", None, Some(bytes), 0, std::iter::empty()).unwrap();
            let line = String::from_utf8(buf).unwrap();
            let back = parse_line(line.trim()).unwrap();
            assert_eq!(back.value.as_deref(), Some(bytes), "{line}");
        }
    }

    #[test]
    fn json_keeps_its_key_order_and_numbers_round_trip() {
        let r = parse_line(r#"{"topic":"t","key":{"z":1, "a":[2, "x y"]},"value":7}"#).unwrap();
        assert_eq!(r.key.as_deref(), Some(&br#"{"z":1,"a":[2,"x y"]}"#[..]));
        assert_eq!(r.value.as_deref(), Some(&b"7"[..]));
        for (bytes, shown) in [
            (&br#"{"z":1,"a":2}"#[..], r#"{"z":1,"a":2}"#),
            (b"7.0", "7.0"),
            (b"007", r#""007""#),
            (b"1.50", r#""1.50""#),
            (b"true", "true"),
            (b"null", r#""null""#),
        ] {
            let mut buf = Vec::new();
            write_record(&mut buf, "o", None, Some(bytes), 0, std::iter::empty()).unwrap();
            let line = String::from_utf8(buf).unwrap();
            assert!(line.contains(&format!(r#""value":{shown},"#)), "{line}");
            let back = parse_line(line.trim()).unwrap();
            assert_eq!(back.value.as_deref(), Some(bytes), "{line}");
        }
    }
}
