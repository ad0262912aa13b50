//! Normalises JSON events: object field names lower-cased, string values
//! trimmed, and optionally the record key taken from a field.
//!
//! Settings: `key_field` (optional) — a top-level field whose value becomes
//! the record key. A value that is not JSON fails the batch with the record's
//! position, so the host reports its topic, partition and offset.

use eddy_sdk::json::{Map, Value};
use eddy_sdk::{Error, Operator, Output, Processor, RecordMut, Settings};

/// The operator.
pub struct NormalizeJson {
    key_field: Option<String>,
    key: Vec<u8>,
}

impl Operator for NormalizeJson {
    fn init(settings: &Settings) -> Result<Self, Error> {
        settings.allow_only(&["key_field"])?;
        Ok(NormalizeJson {
            key_field: settings.get("key_field").map(str::to_lowercase),
            key: Vec::new(),
        })
    }
}

/// Lower-cases field names and trims strings, recursively.
pub fn normalize(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k.to_lowercase(), normalize(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(normalize).collect()),
        Value::String(s) => Value::String(s.trim().to_string()),
        other => other,
    }
}

impl Processor for NormalizeJson {
    #[inline]
    fn process(&mut self, record: &mut RecordMut<'_>, out: &mut Output<'_>) -> Result<(), Error> {
        if record.value().is_none() {
            out.forward(record); // tombstones pass through untouched
            return Ok(());
        }
        let v = normalize(record.value_json::<Value>()?);
        let mut emit = out.emit(record).value_json(&v)?;
        if let Some(field) = &self.key_field {
            self.key.clear();
            match v.get(field) {
                Some(Value::String(s)) => self.key.extend_from_slice(s.as_bytes()),
                Some(other) => self.key.extend_from_slice(other.to_string().as_bytes()),
                None => return Err(Error::new(format!("key field `{field}` is missing"))),
            }
            emit = emit.key(Some(&self.key));
        }
        emit.send();
        Ok(())
    }
}

eddy_sdk::export_processor!(NormalizeJson);

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_sdk::testing::{TestRecord, run_processor};

    #[test]
    fn normalises_and_keys_by_field() {
        let mut op = NormalizeJson::init(&Settings::from_pairs([("key_field", "User")])).unwrap();
        let out = run_processor(
            &mut op,
            &[TestRecord::key_value(
                "old",
                r#"{"User":" Ann ","Tags":[" a "]}"#,
            )],
        )
        .unwrap();
        assert_eq!(out[0].value_str(), r#"{"tags":["a"],"user":"Ann"}"#);
        assert_eq!(out[0].key.as_deref(), Some(&b"Ann"[..]));
    }

    #[test]
    fn rejects_non_json_and_unknown_settings() {
        let mut op = NormalizeJson::init(&Settings::default()).unwrap();
        let err = run_processor(
            &mut op,
            &[TestRecord::value("{}"), TestRecord::value("not json")],
        )
        .unwrap_err();
        assert!(matches!(
            err,
            Error::Failed {
                input_index: Some(1),
                ..
            }
        ));
        assert!(NormalizeJson::init(&Settings::from_pairs([("keyfield", "x")])).is_err());
    }
}
